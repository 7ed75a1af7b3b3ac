// Prints, for each KubernetesConfigOptions field named on the command line, the option's key and
// its fallback keys (tab-separated): what Flink itself reads each pod option from. Run by
// tests/integration/test_flink_options.py on the real operator's Flink jars.
import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.FallbackKey;

public class PodOptions {
    public static void main(String[] fields) throws Exception {
        Class<?> options =
                Class.forName("org.apache.flink.kubernetes.configuration.KubernetesConfigOptions");
        for (String field : fields) {
            ConfigOption<?> option = (ConfigOption<?>) options.getField(field).get(null);
            StringBuilder line = new StringBuilder(field).append('\t').append(option.key());
            for (FallbackKey key : option.fallbackKeys()) {
                line.append('\t').append(key.getKey());
            }
            System.out.println(line);
        }
    }
}
