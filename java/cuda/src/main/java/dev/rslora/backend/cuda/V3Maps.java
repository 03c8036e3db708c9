package dev.rslora.backend.cuda;

import java.util.List;

/**
 * The five TMA descriptors each v3 (Hopper) kernel takes after its params struct, as
 * cuda/kernels/lora_v3_launch.h fixes them: rank 2, T (bf16 or f16), dims innermost first, one row
 * stride, SWIZZLE_128B, L2 promotion 256 B, out-of-bounds elements read as zero. T = the kernels'
 * dtype; r_pad = round_up(r, 8) (the row stride of Ug, Bt, Vg, 16 bytes per 8 elements).
 * <pre>
 *   forward (rslora_lora_forward_v3_*):  X  {d_in,  n}     box {64, 128}
 *                                        W  {d_in,  d_out} box {64, 256}   (cached per frozen weight)
 *                                        Ug {r_pad, n}     box {64, 128}
 *                                        Bt {r_pad, d_out} box {64, 256}
 *                                        Y  {d_out, n}     box {64, 64}
 *   dX (rslora_lora_backward_dx_v3_*):   Vg {r_pad, n}     box {64, 128}
 *                                        At {d_in,  r}     box {64, 64}
 *                                        dY {d_out, n}     box {64, 128}
 *                                        W  {d_in,  d_out} box {64, 64}    (cached per frozen weight)
 *                                        dX {d_in,  n}     box {64, 64}
 * </pre>
 * With r = 0 the LoRA maps may be any valid map: the caller passes a tensor of at least one row.
 */
final class V3Maps {
    static final int BOX_INNER = 64;
    static final int BOX_P = 128;
    static final int BOX_Q = 256;
    static final int BOX_OUT = 64;

    private V3Maps() {
    }

    /** round_up(r, 8). */
    static int rPad(int r) {
        return (r + 7) / 8 * 8;
    }

    /** One row-major T tensor [rows, cols] with row stride {@code ld} elements at {@code base}. */
    record Tensor2d(long base, long rows, long cols, long ld) {
    }

    private static DriverFfm.TensorMap map(TensorMapCache.Encoder e, int dtype, int eb, Tensor2d t, int boxOuter) {
        return e.encode(dtype, eb, t.base(), t.cols(), t.rows(), t.ld() * eb, BOX_INNER, boxOuter, DriverFfm.TMA_SWIZZLE_128B);
    }

    /** X [n, d_in], W (its forward map), Ug [n, r_pad], Bt [d_out, r_pad], Y [n, d_out], in kernel-parameter order. */
    static List<DriverFfm.TensorMap> forward(TensorMapCache.Encoder e, int dtype, int eb, Tensor2d x, DriverFfm.TensorMap w, Tensor2d ug,
                                             Tensor2d bt, Tensor2d y) {
        return List.of(map(e, dtype, eb, x, BOX_P), w, map(e, dtype, eb, ug, BOX_P), map(e, dtype, eb, bt, BOX_Q),
                map(e, dtype, eb, y, BOX_OUT));
    }

    /** Vg [n, r_pad], At [r, d_in], dY [n, d_out], W (its dX map), dX [n, d_in], in kernel-parameter order. */
    static List<DriverFfm.TensorMap> dx(TensorMapCache.Encoder e, int dtype, int eb, Tensor2d vg, Tensor2d at, Tensor2d dy,
                                        DriverFfm.TensorMap w, Tensor2d dx) {
        return List.of(map(e, dtype, eb, vg, BOX_P), map(e, dtype, eb, at, BOX_OUT), map(e, dtype, eb, dy, BOX_P), w,
                map(e, dtype, eb, dx, BOX_OUT));
    }
}
