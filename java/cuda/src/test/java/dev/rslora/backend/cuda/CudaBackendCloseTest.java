package dev.rslora.backend.cuda;

import dev.rslora.tensor.DType;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link CudaBackend#close()} releases everything even when a release fails. The backend here has no
 * context: every context call throws (a NullPointerException standing for the sticky error a faulted
 * kernel leaves, which every driver call returns again), the graph has no driver objects, the tensors
 * live in a fake allocator.
 */
class CudaBackendCloseTest {
    private final CachingAllocator alloc = new CachingAllocator(new CachingAllocatorTest.FakeDevice());
    private final CudaBackend backend = new CudaBackend(null, 1L << 20, 1);

    @Test
    void aFailingContextStillLetsEveryReleaseRunAndTheBackendCloses() {
        DeviceTensor x = new DeviceTensor(backend, DType.F32, new long[] {4, 8}, alloc.allocate(128));
        AtomicInteger graphClosed = new AtomicInteger();
        new CudaGraph(backend, null, null, List.of(x), graphClosed::incrementAndGet);
        assertThrows(IllegalStateException.class, x::close, "pinned by the open graph");

        NullPointerException e = assertThrows(NullPointerException.class, backend::close);
        // the first failure (making the context current) is thrown; the graph's synchronize and the
        // context's close failed too, and were tried
        assertEquals(2, e.getSuppressed().length, java.util.Arrays.toString(e.getSuppressed()));
        assertEquals(1, graphClosed.get(), "the open graph was destroyed");
        assertTrue(backend.isClosed());
        assertDoesNotThrow(backend::close, "a second close is a no-op");
        assertDoesNotThrow(x::close, "the graph unpinned its tensor");
    }

    @Test
    void releaseRunsEveryStepAndThrowsTheFirstFailure() {
        Release r = new Release();
        IllegalStateException first = new IllegalStateException("first");
        AtomicInteger ran = new AtomicInteger();
        r.run(() -> {
            throw first;
        });
        r.run(ran::incrementAndGet);
        r.run(() -> {
            throw new IllegalArgumentException("second");
        });
        r.run(ran::incrementAndGet);
        assertEquals(2, ran.get());
        IllegalStateException e = assertThrows(IllegalStateException.class, r::rethrow);
        assertSame(first, e);
        assertEquals("second", e.getSuppressed()[0].getMessage());
        assertDoesNotThrow(new Release()::rethrow);
    }
}
