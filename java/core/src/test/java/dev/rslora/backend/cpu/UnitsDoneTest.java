package dev.rslora.backend.cpu;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.concurrent.atomic.AtomicIntegerArray;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * Later units of one pool job see everything the counted first units wrote, and a failing counted
 * unit fails the job instead of leaving the later units waiting.
 */
class UnitsDoneTest {

    @Test
    @Timeout(60)
    void laterUnitsSeeWhatTheFirstUnitsWrote() {
        try (WorkerPool pool = new WorkerPool(3)) {
            for (int job = 0; job < 3000; job++) {
                int first = 1 + job % 4;
                int later = job % 13;
                int[] written = new int[first];
                AtomicIntegerArray seen = new AtomicIntegerArray(Math.max(1, later));
                UnitsDone done = new UnitsDone(first);
                int stamp = job + 1;
                int delay = job;
                pool.run(first + later, (w, u) -> {
                    if (u < first) {
                        try {
                            for (int spin = 0; spin < (u + delay) % 50; spin++) {
                                Thread.onSpinWait();
                            }
                            written[u] = stamp;
                        } finally {
                            done.done();
                        }
                    } else {
                        done.await();
                        int sum = 0;
                        for (int v : written) {
                            sum += v;
                        }
                        seen.set(u - first, sum);
                    }
                }, true);
                for (int i = 0; i < later; i++) {
                    assertEquals(first * stamp, seen.get(i), "job " + job + " later unit " + i);
                }
            }
        }
    }

    @Test
    void noCountedUnitsNeverWait() {
        new UnitsDone(0).await();
    }

    @Test
    @Timeout(60)
    void aFailingCountedUnitFailsTheJobWithoutAHang() {
        try (WorkerPool pool = new WorkerPool(2)) {
            IllegalStateException boom = new IllegalStateException("counted unit 1 failed");
            for (int rep = 0; rep < 200; rep++) {
                UnitsDone done = new UnitsDone(2);
                IllegalStateException e = assertThrows(IllegalStateException.class, () -> pool.run(10, (w, u) -> {
                    if (u < 2) {
                        try {
                            if (u == 1) {
                                throw boom;
                            }
                        } finally {
                            done.done();
                        }
                    } else {
                        done.await();
                    }
                }, true));
                assertSame(boom, e);
            }
        }
    }
}
