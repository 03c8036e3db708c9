package dev.rslora.demo;

import dev.rslora.backend.Backend;
import dev.rslora.backend.FrozenWeight;
import dev.rslora.backend.LoraParams;
import dev.rslora.backend.GradMode;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;

/**
 * The frozen world of the DPO experiment, from one seed (see {@link DpoConfig}):
 *
 * <pre>
 *   W1, W2 [d, d] ~ N(0, 1/d)          the policy's frozen layers (borrowed by every {@link DpoPolicy})
 *   E [K, d] ~ N(0, 1)                 frozen response embeddings: logits = h2·Eᵀ [n, K]
 *   T_l = W_l + U_l·diag(s)·V_lᵀ        the true reward's layers: r*(x, ·) = tanh(T2·tanh(T1·x))·Eᵀ [n, K]
 *   held-out set                       evalPrompts prompts [n_eval, d] ~ N(0, 1), their reference log-probs and
 *                                      true rewards [n_eval, K], one reference-sampled, reward-labelled pair each
 * </pre>
 *
 * Matrix products run on the backend (frozen weights, adapter inactive). Owns its tensors.
 */
final class DpoWorld implements AutoCloseable {
    private static final long STREAM_W = 110;
    private static final long STREAM_E = 120;
    private static final long STREAM_TEACHER = 130;
    private static final long STREAM_EVAL = 140;

    private final Arena arena = Arena.ofShared();
    private final Backend backend;
    private final int dim;
    private final int responses;
    private final Tensor w1;
    private final Tensor w2;
    private final FrozenWeight base1;
    private final FrozenWeight base2;
    private final FrozenWeight teacher1;
    private final FrozenWeight teacher2;
    private final FrozenWeight embeddings;
    private final Tensor evalX;
    private final double[][] evalRefLogp;
    private final double[][] evalReward;
    private final int[] evalChosen;
    private final int[] evalRejected;
    private final double baseScore;

    DpoWorld(DpoConfig c, Backend backend) {
        this.backend = backend;
        this.dim = c.dim();
        this.responses = c.responses();
        long seed = c.worldSeed();
        double std = 1 / Math.sqrt(dim);
        double[][] m1 = RandomMatrices.gaussian(new SplittableRandom(RandomMatrices.subSeed(seed, STREAM_W)), dim, dim, std);
        double[][] m2 = RandomMatrices.gaussian(new SplittableRandom(RandomMatrices.subSeed(seed, STREAM_W + 1)), dim, dim, std);
        double[][] d1 = RandomMatrices.spectralDelta(new SplittableRandom(RandomMatrices.subSeed(seed, STREAM_TEACHER)), dim,
                c.teacherScale());
        double[][] d2 = RandomMatrices.spectralDelta(new SplittableRandom(RandomMatrices.subSeed(seed, STREAM_TEACHER + 1)), dim,
                c.teacherScale());
        double[][] e = RandomMatrices.gaussian(new SplittableRandom(RandomMatrices.subSeed(seed, STREAM_E)), responses, dim, 1.0);
        this.w1 = matrix(m1, null);
        this.w2 = matrix(m2, null);
        this.base1 = backend.prepare(w1, null);
        this.base2 = backend.prepare(w2, null);
        this.teacher1 = backend.prepare(matrix(m1, d1), null);
        this.teacher2 = backend.prepare(matrix(m2, d2), null);
        this.embeddings = backend.prepare(matrix(e, null), null);

        int n = c.evalPrompts();
        SplittableRandom rng = new SplittableRandom(RandomMatrices.subSeed(seed, STREAM_EVAL));
        this.evalX = Tensor.allocate(arena, DType.F32, n, dim);
        gaussianFill(evalX, rng);
        Tensor logits = Tensor.allocate(arena, DType.F32, n, responses);
        Tensor rewards = Tensor.allocate(arena, DType.F32, n, responses);
        referenceLogits(evalX, logits);
        trueRewards(evalX, rewards);
        this.evalRefLogp = logSoftmaxRows(logits);
        this.evalReward = rows(rewards);
        this.evalChosen = new int[n];
        this.evalRejected = new int[n];
        double score = 0;
        for (int i = 0; i < n; i++) {
            int[] pair = samplePair(evalRefLogp[i], evalReward[i], rng);
            evalChosen[i] = pair[0];
            evalRejected[i] = pair[1];
            score += expectedReward(evalRefLogp[i], evalReward[i]);
        }
        this.baseScore = score / n;
    }

    /** F32 [rows, cols] holding base + delta (delta may be null), rounded once. */
    private Tensor matrix(double[][] base, double[][] delta) {
        Tensor t = Tensor.allocate(arena, DType.F32, base.length, base[0].length);
        MemorySegment s = t.segment();
        int cols = base[0].length;
        for (int i = 0; i < base.length; i++) {
            for (int k = 0; k < cols; k++) {
                s.setAtIndex(DType.LE_FLOAT, (long) i * cols + k, (float) (base[i][k] + (delta == null ? 0 : delta[i][k])));
            }
        }
        return t;
    }

    static void gaussianFill(Tensor t, SplittableRandom rng) {
        MemorySegment s = t.segment();
        for (long i = 0; i < t.numel(); i++) {
            s.setAtIndex(DType.LE_FLOAT, i, (float) rng.nextGaussian());
        }
    }

    /** out = x·Wᵀ for a frozen W (adapter inactive): x [n, in], out [n, out]. */
    void linear(FrozenWeight w, Tensor x, Tensor out) {
        int n = (int) x.dim(0);
        LoraParams p = new LoraParams(n, w.dIn(), w.dOut(), 1, 0.0, 0f, 0, 0, 0, false, false, GradMode.ASSIGN);
        backend.forward(p, w, x, null, null, null, out);
    }

    /** dx = dy·W for a frozen W: dy [n, out], dx [n, in]. */
    void linearBackward(FrozenWeight w, Tensor x, Tensor dy, Tensor dx) {
        int n = (int) dy.dim(0);
        LoraParams p = new LoraParams(n, w.dIn(), w.dOut(), 1, 0.0, 0f, 0, 0, 0, false, false, GradMode.ASSIGN);
        backend.backward(p, w, x, null, null, null, dy, dx, null, null);
    }

    /** The reference policy's logits E·tanh(W2·tanh(W1·x)) [n, K] for prompts x [n, d]. */
    void referenceLogits(Tensor x, Tensor logits) {
        hiddenThenLogits(base1, base2, x, logits);
    }

    /** The true rewards r*(x, y) = E_y·tanh(T2·tanh(T1·x)) [n, K] for prompts x [n, d]. */
    void trueRewards(Tensor x, Tensor rewards) {
        hiddenThenLogits(teacher1, teacher2, x, rewards);
    }

    private void hiddenThenLogits(FrozenWeight a, FrozenWeight b, Tensor x, Tensor out) {
        try (Arena tmp = Arena.ofConfined()) {
            Tensor h1 = Tensor.allocate(tmp, DType.F32, x.dim(0), dim);
            Tensor h2 = Tensor.allocate(tmp, DType.F32, x.dim(0), dim);
            linear(a, x, h1);
            NetMath.tanhInPlace(h1);
            linear(b, h1, h2);
            NetMath.tanhInPlace(h2);
            linear(embeddings, h2, out);
        }
    }

    /** Each row of F32 [n, K] as log-softmax in double. */
    static double[][] logSoftmaxRows(Tensor logits) {
        int n = (int) logits.dim(0);
        int k = (int) logits.dim(1);
        double[][] out = new double[n][k];
        MemorySegment s = logits.readOnlySegment();
        for (int i = 0; i < n; i++) {
            double max = Double.NEGATIVE_INFINITY;
            for (int y = 0; y < k; y++) {
                max = Math.max(max, s.getAtIndex(DType.LE_FLOAT, (long) i * k + y));
            }
            double sum = 0;
            for (int y = 0; y < k; y++) {
                sum += Math.exp(s.getAtIndex(DType.LE_FLOAT, (long) i * k + y) - max);
            }
            double lse = max + Math.log(sum);
            for (int y = 0; y < k; y++) {
                out[i][y] = s.getAtIndex(DType.LE_FLOAT, (long) i * k + y) - lse;
            }
        }
        return out;
    }

    static double[][] rows(Tensor t) {
        int n = (int) t.dim(0);
        int k = (int) t.dim(1);
        double[][] out = new double[n][k];
        MemorySegment s = t.readOnlySegment();
        for (int i = 0; i < n; i++) {
            for (int y = 0; y < k; y++) {
                out[i][y] = s.getAtIndex(DType.LE_FLOAT, (long) i * k + y);
            }
        }
        return out;
    }

    /** Σ_y π(y)·r(y) for log-probabilities logp. */
    static double expectedReward(double[] logp, double[] reward) {
        double s = 0;
        for (int y = 0; y < logp.length; y++) {
            s += Math.exp(logp[y]) * reward[y];
        }
        return s;
    }

    /**
     * A preference pair for one prompt: y1 ~ π_ref, y2 ~ π_ref conditioned on y2 ≠ y1, then
     * {chosen, rejected} = (y1, y2) with probability σ(r*(y1) − r*(y2)) (Bradley–Terry), else swapped.
     */
    static int[] samplePair(double[] refLogp, double[] reward, SplittableRandom rng) {
        int y1 = sample(refLogp, -1, rng);
        int y2 = sample(refLogp, y1, rng);
        double pFirst = dev.rslora.train.DpoLoss.sigmoid(reward[y1] - reward[y2]);
        return rng.nextDouble() < pFirst ? new int[] {y1, y2} : new int[] {y2, y1};
    }

    /** A draw from exp(logp) excluding index {@code exclude} (−1: none). */
    private static int sample(double[] logp, int exclude, SplittableRandom rng) {
        double total = 0;
        for (int y = 0; y < logp.length; y++) {
            if (y != exclude) {
                total += Math.exp(logp[y]);
            }
        }
        double u = rng.nextDouble() * total;
        int last = -1;
        for (int y = 0; y < logp.length; y++) {
            if (y == exclude) {
                continue;
            }
            last = y;
            u -= Math.exp(logp[y]);
            if (u < 0) {
                return y;
            }
        }
        return last;
    }

    Tensor w1() {
        return w1;
    }

    Tensor w2() {
        return w2;
    }

    FrozenWeight embeddings() {
        return embeddings;
    }

    int dim() {
        return dim;
    }

    int responses() {
        return responses;
    }

    Tensor evalPrompts() {
        return evalX;
    }

    double[][] evalRefLogp() {
        return evalRefLogp;
    }

    double[][] evalReward() {
        return evalReward;
    }

    int[] evalChosen() {
        return evalChosen;
    }

    int[] evalRejected() {
        return evalRejected;
    }

    /** E_x E_{y~π_ref} r*(x, y) over the held-out prompts: the base row's score. */
    double baseScore() {
        return baseScore;
    }

    @Override
    public void close() {
        base1.close();
        base2.close();
        teacher1.close();
        teacher2.close();
        embeddings.close();
        arena.close();
    }
}
