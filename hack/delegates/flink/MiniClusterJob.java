import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;

import org.apache.flink.api.common.JobID;
import org.apache.flink.api.common.restartstrategy.RestartStrategies;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.MemorySize;
import org.apache.flink.configuration.RestOptions;
import org.apache.flink.configuration.TaskManagerOptions;
import org.apache.flink.runtime.jobgraph.JobGraph;
import org.apache.flink.runtime.minicluster.MiniCluster;
import org.apache.flink.runtime.minicluster.MiniClusterConfiguration;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.sink.DiscardingSink;
import org.apache.flink.streaming.api.functions.source.SourceFunction;
import org.apache.flink.streaming.api.graph.StreamGraph;

/**
 * A real Flink runtime (MiniCluster: JobManager, one TaskManager, the REST API) on loopback,
 * standing where the JobManager pod of a FlinkDeployment would be, running one slow endless
 * streaming job under the JobID the operator assigned (status.jobStatus.jobId).
 *
 * <p>The job fails when FAIL_FILE appears: it deletes the file (one failure per file) and
 * throws; the job has no restart strategy, so Flink reports it FAILED.
 *
 * <p>usage: MiniClusterJob REST_PORT JOB_ID_HEX JOB_NAME FAIL_FILE
 */
public class MiniClusterJob {
  /** Emits a number every 200 ms until cancelled, or throws once the fail file exists. */
  public static class Ticker implements SourceFunction<Long> {
    private final String failFile;
    private volatile boolean running = true;

    public Ticker(String failFile) {
      this.failFile = failFile;
    }

    @Override
    public void run(SourceContext<Long> ctx) throws Exception {
      Path trigger = Paths.get(failFile);
      long i = 0;
      while (running) {
        if (Files.deleteIfExists(trigger)) {
          throw new RuntimeException("simulated job failure: " + failFile + " appeared");
        }
        synchronized (ctx.getCheckpointLock()) {
          ctx.collect(i++);
        }
        Thread.sleep(200);
      }
    }

    @Override
    public void cancel() {
      running = false;
    }
  }

  public static void main(String[] args) throws Exception {
    if (args.length != 4) {
      System.err.println("usage: MiniClusterJob REST_PORT JOB_ID_HEX JOB_NAME FAIL_FILE");
      System.exit(2);
    }
    Configuration conf = new Configuration();
    conf.set(RestOptions.BIND_ADDRESS, "127.0.0.1");
    conf.set(RestOptions.ADDRESS, "127.0.0.1");
    conf.set(RestOptions.PORT, Integer.parseInt(args[0]));
    conf.set(TaskManagerOptions.MANAGED_MEMORY_SIZE, MemorySize.parse("16m"));
    conf.set(TaskManagerOptions.NETWORK_MEMORY_MIN, MemorySize.parse("16m"));
    conf.set(TaskManagerOptions.NETWORK_MEMORY_MAX, MemorySize.parse("16m"));
    MiniCluster cluster =
        new MiniCluster(
            new MiniClusterConfiguration.Builder()
                .setConfiguration(conf)
                .setNumTaskManagers(1)
                .setNumSlotsPerTaskManager(1)
                .build());
    cluster.start();
    System.out.println("REST " + cluster.getRestAddress().get());

    StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
    env.setParallelism(1);
    env.setRestartStrategy(RestartStrategies.noRestart());
    env.addSource(new Ticker(args[3])).name("ticker").addSink(new DiscardingSink<>());
    StreamGraph graph = env.getStreamGraph();
    graph.setJobName(args[2]);
    JobGraph job = graph.getJobGraph();
    job.setJobID(JobID.fromHexString(args[1]));
    System.out.println("SUBMITTED " + cluster.submitJob(job).get().getJobID());
    Thread.currentThread().join();
  }
}
