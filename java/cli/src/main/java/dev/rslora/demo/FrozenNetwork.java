package dev.rslora.demo;

import dev.rslora.backend.Backend;
import dev.rslora.backend.FrozenWeight;
import dev.rslora.backend.LoraParams;
import dev.rslora.backend.GradMode;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;

import java.lang.foreign.Arena;
import java.util.SplittableRandom;

/**
 * One seed's frozen network, teacher and data stream.
 *
 * <pre>
 *   student base: y = tanh(W2·tanh(W1·x)),      W_l [d, d] ~ N(0, 1/d) i.i.d., no biases
 *   teacher:      y = tanh(T2·tanh(T1·x)),      T_l = W_l + U_l·diag(s)·V_lᵀ, s_i = scale/√(1+i)
 *   data:         x [batch, d] ~ N(0, 1), fresh each step; target = teacher(x) [batch, d]
 * </pre>
 *
 * Sub-seeds of the seed drive W1, W2, the two teacher perturbations and the data independently.
 * The teacher's matrix products run on the backend (adapter inactive). Owns its tensors.
 */
final class FrozenNetwork implements AutoCloseable {
    private static final long STREAM_W = 10;
    private static final long STREAM_TEACHER = 20;
    private static final long STREAM_DATA = 30;

    private final Arena arena = Arena.ofShared();
    private final Backend backend;
    private final int dim;
    private final int batch;
    private final Tensor w1;
    private final Tensor w2;
    private final FrozenWeight teacher1;
    private final FrozenWeight teacher2;
    private final SplittableRandom data;
    private final Tensor x;
    private final Tensor teacherHidden;
    private final Tensor target;

    FrozenNetwork(SweepConfig c, long seed, Backend backend) {
        this.backend = backend;
        this.dim = c.dim();
        this.batch = c.batch();
        double std = 1 / Math.sqrt(dim);
        double[][] base1 = RandomMatrices.gaussian(new SplittableRandom(RandomMatrices.subSeed(seed, STREAM_W)), dim, dim, std);
        double[][] base2 = RandomMatrices.gaussian(new SplittableRandom(RandomMatrices.subSeed(seed, STREAM_W + 1)), dim, dim, std);
        double[][] delta1 = RandomMatrices.spectralDelta(new SplittableRandom(RandomMatrices.subSeed(seed, STREAM_TEACHER)),
                dim, c.teacherScale());
        double[][] delta2 = RandomMatrices.spectralDelta(new SplittableRandom(RandomMatrices.subSeed(seed, STREAM_TEACHER + 1)),
                dim, c.teacherScale());
        this.w1 = matrix(base1, null);
        this.w2 = matrix(base2, null);
        this.teacher1 = backend.prepare(matrix(base1, delta1), null);
        this.teacher2 = backend.prepare(matrix(base2, delta2), null);
        this.data = new SplittableRandom(RandomMatrices.subSeed(seed, STREAM_DATA));
        this.x = Tensor.allocate(arena, DType.F32, batch, dim);
        this.teacherHidden = Tensor.allocate(arena, DType.F32, batch, dim);
        this.target = Tensor.allocate(arena, DType.F32, batch, dim);
    }

    /** F32 [d, d] holding base + delta (delta may be null), rounded once. */
    private Tensor matrix(double[][] base, double[][] delta) {
        Tensor t = Tensor.allocate(arena, DType.F32, dim, dim);
        for (int i = 0; i < dim; i++) {
            for (int k = 0; k < dim; k++) {
                t.set(i, k, (float) (base[i][k] + (delta == null ? 0 : delta[i][k])));
            }
        }
        return t;
    }

    /** Draws the next batch: fresh x [batch, d] ~ N(0, 1) and target = teacher(x). */
    void nextBatch() {
        for (long i = 0; i < x.numel(); i++) {
            x.set(i, (float) data.nextGaussian());
        }
        LoraParams frozenOnly = new LoraParams(batch, dim, dim, 1, 0.0, 0f, 0, 0, 0, false, false, GradMode.ASSIGN);
        backend.forward(frozenOnly, teacher1, x, null, null, null, teacherHidden);
        NetMath.tanhInPlace(teacherHidden);
        backend.forward(frozenOnly, teacher2, teacherHidden, null, null, null, target);
        NetMath.tanhInPlace(target);
    }

    /** The current input batch x [batch, d] (overwritten by {@link #nextBatch()}). */
    Tensor input() {
        return x;
    }

    /** The teacher's output for the current batch [batch, d]. */
    Tensor target() {
        return target;
    }

    /** The frozen W1 [d, d] of the student's first layer. */
    Tensor w1() {
        return w1;
    }

    /** The frozen W2 [d, d] of the student's second layer. */
    Tensor w2() {
        return w2;
    }

    int dim() {
        return dim;
    }

    int batch() {
        return batch;
    }

    @Override
    public void close() {
        teacher1.close();
        teacher2.close();
        arena.close();
    }
}
