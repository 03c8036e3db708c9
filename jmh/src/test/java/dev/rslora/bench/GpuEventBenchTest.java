package dev.rslora.bench;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** GpuEventBench times its steps as peft_peer.py does: all steps queued, one synchronisation, then the times read. */
class GpuEventBenchTest {
    @Test
    void stepsAreQueuedBackToBackAndReadAfterOneSynchronisation() {
        List<String> log = new ArrayList<>();
        int[] made = {0};
        GpuEventBench.Options o = GpuEventBench.parse(new String[] {"--warmup", "2", "--reps", "5"});
        float[] ms = GpuEventBench.time(() -> log.add("sync"), () -> {
            int id = made[0]++;
            return new GpuEventBench.StepTimer() {
                @Override
                public void start() {
                    log.add("start" + id);
                }

                @Override
                public void stop() {
                    log.add("stop" + id);
                }

                @Override
                public float elapsedMs() {
                    log.add("read" + id);
                    return id + 0.5f;
                }

                @Override
                public void close() {
                    log.add("close" + id);
                }
            };
        }, o, 3, k -> log.add("step" + k));
        assertEquals(List.of("step0", "step1", "sync",
                "start0", "step0", "stop0", "start1", "step1", "stop1", "start2", "step2", "stop2",
                "start3", "step0", "stop3", "start4", "step1", "stop4", "sync",
                "read0", "read1", "read2", "read3", "read4",
                "close0", "close1", "close2", "close3", "close4"), log);
        assertArrayEquals(new float[] {0.5f, 1.5f, 2.5f, 3.5f, 4.5f}, ms);
    }
}
