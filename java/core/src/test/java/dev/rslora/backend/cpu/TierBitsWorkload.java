package dev.rslora.backend.cpu;

import dev.rslora.backend.GradMode;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import dev.rslora.train.SeqLogprob;

import java.lang.foreign.Arena;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.zip.CRC32;

/**
 * The workload of {@link TierBitsTest}: one small problem per route of the cpu backend (the
 * forward and backward row paths, the panels of few rows, chunks of rows, the merged route) and
 * one SeqLogprob call, each run {@code reps} times; the bits of the last run's outputs as one
 * CRC-32 per case. Run in a child JVM with {@code -Xint} (every vector operation in the Vector
 * API's Java fallback) and in the test's JVM after warming up (the C2 intrinsics).
 */
public final class TierBitsWorkload {
    private record Case(int n, int r, DType dtype, float dropout, GradMode mode) {
    }

    private static final Case[] CASES = {
        new Case(1, 40, DType.F32, 0f, GradMode.ASSIGN),          // forward and backward rows, one-row kernels
        new Case(2, 40, DType.BF16, 0.1f, GradMode.ACCUMULATE),   // forward rows (group), converted rows
        new Case(5, 40, DType.F32, 0.1f, GradMode.ASSIGN),        // training: forward rows, backward tiles on unit panels
        new Case(20, 24, DType.F32, 0.1f, GradMode.ACCUMULATE),   // panels
        new Case(200, 16, DType.F32, 0f, GradMode.ASSIGN),        // N ≥ 2·d: the merged route
    };

    private TierBitsWorkload() {
    }

    public static void main(String[] args) {
        System.out.println(String.join(" ", digests(Integer.parseInt(args[0]))));
    }

    /** One CRC-32 (hex) per case and one for SeqLogprob, each of the last of {@code reps} runs. */
    static List<String> digests(int reps) {
        List<String> out = new ArrayList<>();
        try (CpuBackend backend = new CpuBackend(2)) {
            for (Case k : CASES) {
                try (LayerFixture f = new LayerFixture(k.n(), 72, 80, k.r(), k.dtype(), k.dropout(), k.mode(), true,
                        k.n() * 31L + k.r())) {
                    LayerFixture.Outputs o = null;
                    for (int i = 0; i < reps; i++) {
                        o = f.run(backend);
                    }
                    out.add(crc(o.y(), o.u(), o.dx(), o.gradA(), o.gradB()));
                }
            }
        }
        out.add(seqLogprob(reps));
        return out;
    }

    private static String seqLogprob(int reps) {
        SplittableRandom rng = new SplittableRandom(0x71E5L);
        int batch = 2, time = 3, vocab = 1001;
        int[] labels = new int[batch * time];
        for (int i = 0; i < labels.length; i++) {
            labels[i] = rng.nextInt(vocab);
        }
        try (Arena arena = Arena.ofConfined()) {
            Tensor logits = Tensor.allocate(arena, DType.F32, batch, time, vocab);
            for (long i = 0; i < logits.numel(); i++) {
                logits.set(i, (float) rng.nextDouble(-8, 8));
            }
            Tensor lse = Tensor.allocate(arena, DType.F32, batch, time);
            Tensor logp = Tensor.allocate(arena, DType.F32, batch);
            Tensor g = Tensor.allocate(arena, DType.F32, batch);
            g.fill(0.5f);
            Tensor d = Tensor.allocate(arena, DType.F32, batch, time, vocab);
            for (int i = 0; i < reps; i++) {
                SeqLogprob.forward(logits, labels, lse, logp);
                SeqLogprob.backward(logits, labels, lse, g, d);
            }
            return crc(lse, logp, d);
        }
    }

    private static String crc(Tensor... ts) {
        CRC32 crc = new CRC32();
        for (Tensor t : ts) {
            crc.update(t.readOnlySegment().toArray(ValueLayout.JAVA_BYTE));
        }
        return Long.toHexString(crc.getValue());
    }
}
