package dev.rslora.backend.cpu;

import dev.rslora.tensor.Tensor;

import java.lang.foreign.MemorySegment;

/**
 * One layer's packed copies of its adapter (held by its {@link CpuFrozenWeight}), reused from
 * call to call while A, B and γ stay the same (calls of few rows read A and B as they are instead,
 * {@link AdapterRows}):
 * <pre>
 *   aT   transposed panels of A [r, d_in]       (panels over r, K = d_in)    forward  U = D(X)·Aᵀ
 *   gbT  transposed panels of γ·B [d_out, r]    (panels over d_out, K = r)   forward  Y += U·(γB)ᵀ
 *   bP   direct panels of B [d_out, r]          (panels over r, K = d_out)   backward V = dY·B
 *   gaP  direct panels of γ·A [r, d_in]         (panels over d_in, K = r)    backward dX += D'(V·γA)
 * </pre>
 * Each copy is keyed by the source tensor's identity, its {@link Tensor#version()} (which every
 * write path of a tensor bumps: the optimizer step, loading, {@code copyFrom}, {@code set},
 * {@code segment()}) and the factor folded in; a key that differs means the copy is packed again
 * before use, so no writer has to remember to invalidate anything. Keys are recorded before the
 * packing reads the tensor, and cleared when a call fails. Guarded by the backend's lock.
 */
final class AdapterPanels implements AutoCloseable {
    /** What a packed copy was made from. */
    record Key(Tensor source, long version, int scaleBits) {
        static Key of(Tensor t, float scale) {
            return new Key(t, t.version(), Float.floatToRawIntBits(scale));
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof Key k && k.source == source && k.version == version && k.scaleBits == scaleBits;
        }

        @Override
        public int hashCode() {
            return System.identityHashCode(source) * 31 + Long.hashCode(version) * 17 + scaleBits;
        }
    }

    /** One packed copy: its buffer and the key it is valid for (null: not valid). */
    static final class Copy implements AutoCloseable {
        private final NativeBuffer buffer = new NativeBuffer();
        private Key key;
        private MemorySegment segment;

        /**
         * The buffer for {@code want} ({@code bytes} long), and whether it must be packed now. When
         * it must, the copy is marked invalid until {@link #packed} records the key.
         */
        boolean needs(Key want, long bytes) {
            if (want.equals(key) && segment != null && segment.byteSize() >= bytes) {
                return false;
            }
            key = null;
            segment = buffer.ensure(bytes);
            return true;
        }

        MemorySegment segment() {
            return segment;
        }

        void packed(Key k) {
            key = k;
        }

        void invalidate() {
            key = null;
        }

        @Override
        public void close() {
            key = null;
            segment = null;
            buffer.close();
        }
    }

    final Copy aT = new Copy();
    final Copy gbT = new Copy();
    final Copy bP = new Copy();
    final Copy gaP = new Copy();
    /** Packings done (each of the four copies counts once), for tests. */
    long packs;

    void invalidateAll() {
        aT.invalidate();
        gbT.invalidate();
        bP.invalidate();
        gaP.invalidate();
    }

    @Override
    public void close() {
        aT.close();
        gbT.close();
        bP.close();
        gaP.close();
    }
}
