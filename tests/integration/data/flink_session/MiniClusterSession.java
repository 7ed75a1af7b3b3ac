import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.MemorySize;
import org.apache.flink.configuration.RestOptions;
import org.apache.flink.configuration.TaskManagerOptions;
import org.apache.flink.configuration.WebOptions;
import org.apache.flink.runtime.minicluster.MiniCluster;
import org.apache.flink.runtime.minicluster.MiniClusterConfiguration;

/**
 * A real Flink runtime (MiniCluster: JobManager, one TaskManager, the REST API with jar upload and
 * run) on loopback, standing where a session cluster's JobManager pod would be: it runs no job of
 * its own; the Flink operator submits FlinkSessionJobs to it through the REST API.
 *
 * <p>usage: MiniClusterSession REST_PORT
 */
public class MiniClusterSession {
  public static void main(String[] args) throws Exception {
    if (args.length != 1) {
      System.err.println("usage: MiniClusterSession REST_PORT");
      System.exit(2);
    }
    Configuration conf = new Configuration();
    conf.set(RestOptions.BIND_ADDRESS, "127.0.0.1");
    conf.set(RestOptions.ADDRESS, "127.0.0.1");
    conf.set(RestOptions.PORT, Integer.parseInt(args[0]));
    conf.set(WebOptions.SUBMIT_ENABLE, true);
    conf.set(TaskManagerOptions.MANAGED_MEMORY_SIZE, MemorySize.parse("16m"));
    conf.set(TaskManagerOptions.NETWORK_MEMORY_MIN, MemorySize.parse("16m"));
    conf.set(TaskManagerOptions.NETWORK_MEMORY_MAX, MemorySize.parse("16m"));
    MiniCluster cluster =
        new MiniCluster(
            new MiniClusterConfiguration.Builder()
                .setConfiguration(conf)
                .setNumTaskManagers(1)
                .setNumSlotsPerTaskManager(2)
                .build());
    cluster.start();
    System.out.println("REST " + cluster.getRestAddress().get());
    Thread.currentThread().join();
  }
}
