package dev.rslora.train;

import dev.rslora.tensor.Tensor;

/**
 * Which tensors the training loops may touch with vector loads and stores: those over native
 * memory. The JDK keeps one type profile for the segment accesses of all vector loads and stores
 * in the JVM, so a single heap segment among them makes every later one polymorphic; the cpu
 * backend's micro-kernel then ran 1.75× slower for the rest of the JVM's life (JMH, 2026-12-06;
 * {@code dev.rslora.backend.cpu.Convert#vectorOk} does the same for the backend). A tensor over a
 * heap array takes the scalar loop instead: AdamW's does the same arithmetic; SeqLogprob's sums in
 * double where the vector one sums blocks of fp32 lanes (its results agree within its tolerance).
 */
final class VectorAccess {
    private VectorAccess() {
    }

    /** Whether {@code t} may be read and written by vector loops: its memory is native. */
    static boolean ok(Tensor t) {
        return t.readOnlySegment().isNative();
    }
}
