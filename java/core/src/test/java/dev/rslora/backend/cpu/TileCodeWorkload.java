package dev.rslora.backend.cpu;

import dev.rslora.backend.FrozenWeight;
import dev.rslora.backend.GradMode;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;

/**
 * The child JVM of {@link TileCodeTest}: LoRA training steps (forward and backward, one worker,
 * d_in = 256, d_out = 192, r = 16, F32, the outputs allocated once) at N = 64, which runs the
 * register tile ({@code MicroKernel.mma}, alone and under {@code mmaAdd}), and at N = 1, which runs
 * its one-row form ({@code MicroKernel.mmaRow}), {@code reps} rounds, so that C2 compiles both.
 * Prints "done" at the end.
 */
public final class TileCodeWorkload {
    private TileCodeWorkload() {
    }

    public static void main(String[] args) {
        int reps = Integer.parseInt(args[0]);
        try (CpuBackend backend = new CpuBackend(1);
             LayerFixture tiles = new LayerFixture(64, 256, 192, 16, DType.F32, 0f, GradMode.ASSIGN, true, 11L);
             LayerFixture row = new LayerFixture(1, 256, 192, 16, DType.F32, 0f, GradMode.ASSIGN, true, 12L);
             FrozenWeight wTiles = backend.prepare(tiles.w, tiles.bias);
             FrozenWeight wRow = backend.prepare(row.w, row.bias)) {
            Steps t = new Steps(tiles);
            Steps o = new Steps(row);
            for (int i = 0; i < reps; i++) {
                t.run(backend, wTiles);
                for (int j = 0; j < 8; j++) {
                    o.run(backend, wRow);
                }
            }
        }
        System.out.println("done");
    }

    /** One fixture's outputs, allocated once, and its training step. */
    private record Steps(LayerFixture f, Tensor y, Tensor u, Tensor dx, Tensor gA, Tensor gB) {
        Steps(LayerFixture f) {
            this(f, f.poisoned(DType.F32, f.n, f.dOut), f.poisoned(DType.F32, f.n, f.r),
                    f.poisoned(DType.F32, f.n, f.dIn), f.poisoned(DType.F32, f.r, f.dIn),
                    f.poisoned(DType.F32, f.dOut, f.r));
        }

        void run(CpuBackend backend, FrozenWeight w) {
            f.a.markWritten();  // as an optimizer step would: the adapter panels are packed again
            backend.forward(f.params, w, f.x, f.a, f.b, u, y);
            backend.backward(f.params, w, f.x, f.a, f.b, u, f.dy, dx, gA, gB);
        }
    }
}
