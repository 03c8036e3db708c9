package dev.rslora.backend.cpu;

import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicIntegerArray;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The pool runs every unit of a job exactly once, on workers with valid indices, and reports failures. */
class WorkerPoolTest {

    @Test
    void everyUnitRunsOnceWhicheverThreadTakesIt() {
        SplittableRandom rng = new SplittableRandom(7);
        try (WorkerPool pool = new WorkerPool(3)) {
            for (int job = 0; job < 2000; job++) {
                int units = rng.nextInt(0, 40);
                AtomicIntegerArray runs = new AtomicIntegerArray(Math.max(1, units));
                AtomicIntegerArray byWorker = new AtomicIntegerArray(3);
                pool.run(units, (w, u) -> {
                    runs.incrementAndGet(u);
                    byWorker.incrementAndGet(w);
                    if ((u & 7) == 0) {
                        Thread.onSpinWait();
                    }
                }, true);
                for (int u = 0; u < units; u++) {
                    assertEquals(1, runs.get(u), "job " + job + " unit " + u);
                }
                assertEquals(units, byWorker.get(0) + byWorker.get(1) + byWorker.get(2), "job " + job);
            }
        }
    }

    @Test
    void theSerialFormRunsEverythingOnTheCallerInOrder() {
        try (WorkerPool pool = new WorkerPool(2)) {
            StringBuilder order = new StringBuilder();
            pool.run(5, (w, u) -> order.append(w).append(':').append(u).append(' '), false);
            assertEquals("0:0 0:1 0:2 0:3 0:4 ", order.toString());
        }
    }

    @Test
    void aFailingUnitFailsTheJobAndThePoolStaysUsable() {
        try (WorkerPool pool = new WorkerPool(2)) {
            IllegalStateException boom = new IllegalStateException("unit 13 failed");
            for (int rep = 0; rep < 50; rep++) {
                IllegalStateException e = assertThrows(IllegalStateException.class, () -> pool.run(64, (w, u) -> {
                    if (u == 13) {
                        throw boom;
                    }
                }, true));
                assertSame(boom, e);
            }
            AtomicIntegerArray runs = new AtomicIntegerArray(8);
            pool.run(8, (w, u) -> runs.incrementAndGet(u), true);
            for (int u = 0; u < 8; u++) {
                assertEquals(1, runs.get(u));
            }
        }
        WorkerPool closed = new WorkerPool(2);
        closed.close();
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> closed.run(3, (w, u) -> { }, true));
        assertTrue(e.getMessage().contains("closed"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new WorkerPool(0));
    }
}
