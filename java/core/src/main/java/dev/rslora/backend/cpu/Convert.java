package dev.rslora.backend.cpu;

import dev.rslora.tensor.DType;
import dev.rslora.tensor.Fp16;
import dev.rslora.tensor.Tensor;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/**
 * Contiguous runs of tensor elements to and from fp32 heap arrays. F32 is a bulk copy (vector
 * stores in the short-run paths: tile rows, the gradient epilogue {@link #storeScaled}); BF16 is
 * vectorised both ways (the store is round-to-nearest-even with NaN → 0x7FFF, bit-identical to
 * {@link dev.rslora.tensor.Bf16#fromFloat}); F16 uses the scalar {@link Fp16} conversions
 * (the JIT maps them to F16C instructions). Indices are flat element indices of the tensor.
 */
final class Convert {
    private static final VectorSpecies<Float> FS = MicroKernel.SPECIES;
    private static final int L = MicroKernel.L;
    private static final VectorSpecies<Integer> IS = VectorSpecies.of(int.class, FS.vectorShape());
    /** Shorts of half the width (L lanes); unused (and a placeholder) with scalar tiles. */
    private static final VectorSpecies<Short> SS = VectorSpecies.of(short.class,
            VectorShape.forBitSize(MicroKernel.SCALAR ? 64 : L * 16));
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    private Convert() {
    }

    /**
     * Where a call writes one output tensor: its segment taken once, on the calling thread (taking
     * it bumps the tensor's version; the workers then write through this without touching the
     * tensor object).
     */
    record Sink(MemorySegment seg, DType dtype) {
        /** The sink of {@code t}, or null for null. */
        static Sink of(Tensor t) {
            return t == null ? null : new Sink(t.segment(), t.dtype());
        }
    }

    /**
     * Whether vector loads and stores may touch {@code seg}: native memory only. A tensor over a
     * heap array takes the scalar loops, which round the same way: one heap segment reaching a
     * vector access pollutes the JDK's type profile shared by every vector segment access, and the
     * micro-kernel's panel loads ran 1.75× slower for the rest of the JVM's life
     * ({@link TileOps#allFinite(float[], int, int)}).
     */
    static boolean vectorOk(MemorySegment seg) {
        return seg.isNative();
    }

    /** dst[off + i] = t[start + i] as fp32, i &lt; count. */
    static void load(Tensor t, long start, int count, float[] dst, int off) {
        MemorySegment seg = t.readOnlySegment();
        switch (t.dtype()) {
            case F32 -> MemorySegment.copy(seg, DType.LE_FLOAT, start * 4, dst, off, count);
            case BF16 -> loadBf16(seg, start, count, dst, off);
            case F16 -> {
                for (int i = 0; i < count; i++) {
                    dst[off + i] = Fp16.toFloat(seg.getAtIndex(DType.LE_SHORT, start + i));
                }
            }
        }
    }

    /** t[start + i] = round(src[off + i]) to t's dtype, i &lt; count. */
    static void store(float[] src, int off, int count, Sink t, long start) {
        MemorySegment seg = t.seg();
        switch (t.dtype()) {
            case F32 -> MemorySegment.copy(src, off, seg, DType.LE_FLOAT, start * 4, count);
            case BF16 -> storeBf16(src, off, count, seg, start);
            case F16 -> {
                for (int i = 0; i < count; i++) {
                    seg.setAtIndex(DType.LE_SHORT, start + i, Fp16.fromFloat(src[off + i]));
                }
            }
        }
    }

    /**
     * The gradient epilogue of one run of values: {@code t[start + i] = round(src[off + i]·g (+ t[start + i]))}
     * for i &lt; count, the product rounded to fp32 before the gradient's current value is added (no
     * addition unless {@code add}: the gradient mode ACCUMULATE), then rounded once to t's dtype.
     * F32 in native memory goes with vector loads and stores straight to the segment, its last
     * count mod L values one by one: no scratch pass and no bulk-copy call, whose fixed cost
     * dominated short runs (a 256-float row of dA, the r values of a dB row). BF16 widens the
     * current values into {@code tmp} (at least count floats, not {@code src}), forms the sums there
     * in plain loops that C2 vectorises itself, and rounds them with {@link #storeBf16}; F16, and F32 in
     * heap memory, go value by value. Each dtype parses only its own arm: 10 800–14 900 nodes in
     * GraphSizeTest's runs. When the current values came from a tensor of any dtype, every dtype's
     * load and store was inlined beside the F32 vectors and this method parsed to 18 100–18 400
     * nodes, at C2's inlining cutoff.
     */
    static void storeScaled(float[] src, int off, int count, float g, boolean add, Sink t, long start, float[] tmp) {
        MemorySegment seg = t.seg();
        boolean vector = !MicroKernel.SCALAR && vectorOk(seg);
        switch (t.dtype()) {
            case F32 -> {
                if (vector) {
                    scaledF32(src, off, count, g, add, seg, start);
                } else {
                    for (int i = 0; i < count; i++) {
                        float v = src[off + i] * g;
                        seg.setAtIndex(DType.LE_FLOAT, start + i, add ? v + seg.getAtIndex(DType.LE_FLOAT, start + i) : v);
                    }
                }
            }
            case BF16 -> {
                if (add) {
                    loadBf16(seg, start, count, tmp, 0);
                    for (int i = 0; i < count; i++) {
                        tmp[i] = src[off + i] * g + tmp[i];
                    }
                } else {
                    for (int i = 0; i < count; i++) {
                        tmp[i] = src[off + i] * g;
                    }
                }
                storeBf16(tmp, 0, count, seg, start);
            }
            case F16 -> {
                for (int i = 0; i < count; i++) {
                    float v = src[off + i] * g;
                    if (add) {
                        v += Fp16.toFloat(seg.getAtIndex(DType.LE_SHORT, start + i));
                    }
                    seg.setAtIndex(DType.LE_SHORT, start + i, Fp16.fromFloat(v));
                }
            }
        }
    }

    /** {@link #storeScaled} for an F32 segment in native memory: whole vectors, then the last values one by one. */
    private static void scaledF32(float[] src, int off, int count, float g, boolean add, MemorySegment seg, long start) {
        long at = start * 4;
        int i = 0;
        for (; i + L <= count; i += L, at += L * 4L) {
            FloatVector v = FloatVector.fromArray(FS, src, off + i).mul(g);
            if (add) {
                v = v.add(FloatVector.fromMemorySegment(FS, seg, at, LE));
            }
            v.intoMemorySegment(seg, at, LE);
        }
        for (; i < count; i++, at += 4) {
            float v = src[off + i] * g;
            seg.set(DType.LE_FLOAT, at, add ? v + seg.get(DType.LE_FLOAT, at) : v);
        }
    }

    /**
     * One register-tile row: t[start + i] = round(src[off + i]) for i &lt; count ≤ NR, with vector
     * stores for F32 and BF16 (a bulk copy costs more than the 32 values it moves); src holds whole
     * vectors (count rounded up to L). The last count mod L values go by a masked store for F32, or,
     * where that store's vector would reach past the tensor's end ({@link SegmentEnd}), with 128-bit
     * tiles ({@link MicroKernel#PLAIN_MEMORY}) and for BF16, by {@link #store} (Bf16.fromFloat rounds
     * as {@link #storeBf16Vector}; with a masked bf16 store beside the whole one, a caller that
     * inlines the conversion would parse both wherever partial rows made the masked one hot:
     * GraphSizeTest).
     */
    static void storeTileRow(float[] src, int off, int count, Sink t, long start) {
        if (MicroKernel.SCALAR || t.dtype() == DType.F16 || !vectorOk(t.seg())) {
            store(src, off, count, t, start);
            return;
        }
        MemorySegment seg = t.seg();
        boolean f32 = t.dtype() == DType.F32;
        long end = seg.byteSize();
        for (int h = 0; h < count; h += L) {
            if (h + L > count && (!f32 || MicroKernel.PLAIN_MEMORY || (start + h + L) * 4 > end)) {
                // the last values by store: no masked stores with 128-bit tiles (MicroKernel.PLAIN_MEMORY)
                // nor for bf16, nor where the masked store would reach past the tensor's end
                store(src, off + h, count - h, t, start + h);
                break;
            }
            if (f32) {
                FloatVector v = FloatVector.fromArray(FS, src, off + h);
                if (h + L <= count) {
                    v.intoMemorySegment(seg, (start + h) * 4, LE);
                } else {
                    v.intoMemorySegment(seg, (start + h) * 4, LE, FS.indexInRange(h, count));
                }
            } else {
                storeBf16Vector(src, off + h, seg, (start + h) * 2);
            }
        }
    }

    private static void loadBf16(MemorySegment seg, long start, int count, float[] dst, int off) {
        int i = 0;
        if (!MicroKernel.SCALAR && vectorOk(seg)) {
            for (; i + L <= count; i += L) {
                ShortVector h = ShortVector.fromMemorySegment(SS, seg, (start + i) * 2, LE);
                IntVector w = (IntVector) h.convertShape(VectorOperators.ZERO_EXTEND_S2I, IS, 0);
                w.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().intoArray(dst, off + i);
            }
        }
        for (; i < count; i++) {
            dst[off + i] = Float.intBitsToFloat((seg.getAtIndex(DType.LE_SHORT, start + i) & 0xFFFF) << 16);
        }
    }

    private static void storeBf16(float[] src, int off, int count, MemorySegment seg, long start) {
        int i = 0;
        if (!MicroKernel.SCALAR && vectorOk(seg)) {
            for (; i + L <= count; i += L) {
                storeBf16Vector(src, off + i, seg, (start + i) * 2);
            }
        }
        for (; i < count; i++) {
            seg.setAtIndex(DType.LE_SHORT, start + i, dev.rslora.tensor.Bf16.fromFloat(src[off + i]));
        }
    }

    /**
     * The L floats src[off .. off + L) rounded to bf16 bits (nearest even, NaN → 0x7FFF, as
     * Bf16.fromFloat), stored at byte {@code at} of seg. Load, rounding and store in one method: a
     * vector passed to or returned from a call that C2 leaves out of line is boxed (see the package
     * comment).
     */
    private static void storeBf16Vector(float[] src, int off, MemorySegment seg, long at) {
        IntVector x = FloatVector.fromArray(FS, src, off).reinterpretAsInts();
        IntVector lsb = x.lanewise(VectorOperators.LSHR, 16).and(1);
        IntVector r = x.add(0x7FFF).add(lsb).lanewise(VectorOperators.LSHR, 16);
        VectorMask<Integer> nan = x.and(0x7FFF_FFFF).compare(VectorOperators.GT, 0x7F80_0000);
        ShortVector bits = (ShortVector) r.blend(0x7FFF, nan).convertShape(VectorOperators.I2S, SS, 0);
        bits.intoMemorySegment(seg, at, LE);
    }
}
