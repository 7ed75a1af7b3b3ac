import org.apache.flink.api.common.restartstrategy.RestartStrategies;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.sink.DiscardingSink;
import org.apache.flink.streaming.api.functions.source.SourceFunction;

/**
 * The streamlet's job, as a jar a FlinkSessionJob names: an endless slow stream. Its program
 * arguments are federator's wiring (--FEDERATOR_... value); it prints them.
 */
public class TickerJob {
  /** Emits a number every 200 ms until cancelled. */
  public static class Ticker implements SourceFunction<Long> {
    private volatile boolean running = true;

    @Override
    public void run(SourceContext<Long> ctx) throws Exception {
      long i = 0;
      while (running) {
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
    System.out.println("wiring: " + String.join(" ", args));
    StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
    env.setRestartStrategy(RestartStrategies.noRestart());
    env.addSource(new Ticker()).name("ticker").addSink(new DiscardingSink<>());
    env.execute("ticker");
  }
}
