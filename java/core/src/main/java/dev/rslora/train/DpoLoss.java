package dev.rslora.train;

import dev.rslora.internal.Args;

import java.util.Arrays;
import java.util.Locale;

/**
 * The DPO loss as TRL's {@code DPOTrainer.dpo_loss} computes it (Rafailov et al. 2023), from the
 * summed log-probabilities of the chosen and rejected responses under the policy and the reference
 * model, for a batch of B preference pairs. In double, per pair b:
 *
 * <pre>
 *   z_b = (π_c − π_r) − (ρ_c − ρ_r)                       (policy log-ratio minus reference log-ratio)
 *   sigmoid: ℓ_b = −(1−ε)·log σ(β·z_b) − ε·log σ(−β·z_b)    (ε = label_smoothing, cDPO)
 *   hinge:   ℓ_b = max(0, 1 − β·z_b)                        (RSO)
 *   ipo:     ℓ_b = (z_b − 1/(2β))²                          (IPO; TRL feeds it length-averaged log-probs)
 *   loss = (1/B)·Σ ℓ_b
 *   chosen_rewards_b = β·(π_c − ρ_c),  rejected_rewards_b = β·(π_r − ρ_r)
 *   reward accuracy = (1/B)·#{b : chosen_rewards_b &gt; rejected_rewards_b}
 *   ∂loss/∂π_c,b = ℓ'(z_b)/B,  ∂loss/∂π_r,b = −ℓ'(z_b)/B, with
 *     sigmoid: ℓ' = β·(σ(β·z) − (1 − ε));  hinge: ℓ' = −β where 1 − β·z &gt; 0, else 0;  ipo: ℓ' = 2·(z − 1/(2β))
 * </pre>
 *
 * log σ is evaluated stably (no overflow for any finite argument). The reference log-probs get no
 * gradient (TRL computes them under {@code torch.no_grad()}). The inputs are taken as given:
 * {@link SeqLogprob} returns summed log-probs, which is what TRL feeds sigmoid and hinge; for TRL's
 * ipo divide each by its number of completion tokens first. TRL options not implemented here
 * (reference_free, rpo_alpha, use_weighting, the other loss types) are absent, not ignored.
 */
public final class DpoLoss {
    /** TRL's {@code loss_type} values implemented here. */
    public enum Type {
        /** −log σ(β·z), with label smoothing (cDPO). */
        SIGMOID,
        /** max(0, 1 − β·z) (RSO). */
        HINGE,
        /** (z − 1/(2β))² (IPO). */
        IPO;

        /**
         * The variant with TRL's {@code loss_type} name.
         *
         * @param name "sigmoid", "hinge" or "ipo" (lower case, as TRL)
         * @return the variant
         * @throws IllegalArgumentException if the name is none of these (the message quotes it)
         */
        public static Type fromName(String name) {
            for (Type t : values()) {
                if (t.name().toLowerCase(Locale.ROOT).equals(name)) {
                    return t;
                }
            }
            throw new IllegalArgumentException("loss type must be sigmoid, hinge or ipo, got '" + name + "'");
        }

        /**
         * TRL's {@code loss_type} name.
         *
         * @return "sigmoid", "hinge" or "ipo"
         */
        public String trlName() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    /**
     * The loss of one batch.
     *
     * @param loss                the mean loss
     * @param losses              ℓ_b per pair
     * @param chosenRewards       β·(π_c − ρ_c) per pair
     * @param rejectedRewards     β·(π_r − ρ_r) per pair
     * @param rewardAccuracy      fraction of pairs whose chosen reward is strictly larger
     * @param gradPolicyChosen    ∂loss/∂π_c per pair (of the mean loss)
     * @param gradPolicyRejected  ∂loss/∂π_r per pair
     */
    public record Result(double loss, double[] losses, double[] chosenRewards, double[] rejectedRewards, double rewardAccuracy,
                         double[] gradPolicyChosen, double[] gradPolicyRejected) {
        /**
         * Checks that every array is there and that all hold one value per pair.
         *
         * @throws IllegalArgumentException naming the array that is null or whose length differs from losses'
         */
        public Result {
            String[] names = {"losses", "chosenRewards", "rejectedRewards", "gradPolicyChosen", "gradPolicyRejected"};
            double[][] arrays = {losses, chosenRewards, rejectedRewards, gradPolicyChosen, gradPolicyRejected};
            for (int i = 0; i < arrays.length; i++) {
                if (arrays[i] == null) {
                    throw new IllegalArgumentException("DpoLoss.Result: " + names[i] + " is null");
                }
                if (arrays[i].length != losses.length) {
                    throw new IllegalArgumentException("DpoLoss.Result: " + names[i] + " holds " + arrays[i].length
                            + " values, losses " + losses.length);
                }
            }
        }

        /**
         * Mean of chosen − rejected rewards (TRL's rewards/margins).
         *
         * @return (1/B)·Σ (chosen_rewards_b − rejected_rewards_b), in nats scaled by β
         */
        public double rewardMargin() {
            double s = 0;
            for (int b = 0; b < chosenRewards.length; b++) {
                s += chosenRewards[b] - rejectedRewards[b];
            }
            return s / chosenRewards.length;
        }
    }

    private final double beta;
    private final double labelSmoothing;
    private final Type type;

    /**
     * A DPO loss of the given variant.
     *
     * @param beta           β &gt; 0 (the paper's recipe: 0.1)
     * @param labelSmoothing ε in [0, 0.5] (sigmoid only; TRL's cDPO), 0 for plain DPO
     * @param type           the loss variant
     * @throws IllegalArgumentException if β is not finite and &gt; 0, ε is outside [0, 0.5], type is
     *                                  null, or ε ≠ 0 with a variant other than sigmoid
     */
    public DpoLoss(double beta, double labelSmoothing, Type type) {
        if (!(beta > 0) || Double.isInfinite(beta)) {
            throw new IllegalArgumentException("beta must be finite and > 0, got beta=" + beta);
        }
        if (!(labelSmoothing >= 0 && labelSmoothing <= 0.5)) {
            throw new IllegalArgumentException("label_smoothing must be in [0, 0.5], got label_smoothing=" + labelSmoothing);
        }
        if (type == null) {
            throw new IllegalArgumentException("loss type is null");
        }
        if (type != Type.SIGMOID && labelSmoothing != 0) {
            throw new IllegalArgumentException("label_smoothing=" + labelSmoothing + " applies to the sigmoid loss only, not "
                    + type.trlName());
        }
        this.beta = beta;
        this.labelSmoothing = labelSmoothing;
        this.type = type;
    }

    /**
     * The sigmoid loss with β and no label smoothing (DPO as in the paper).
     *
     * @param beta β &gt; 0, the strength of the implicit KL penalty (the paper's recipe: 0.1)
     * @return the plain DPO loss
     * @throws IllegalArgumentException if β is not finite and &gt; 0
     */
    public static DpoLoss paper(double beta) {
        return new DpoLoss(beta, 0.0, Type.SIGMOID);
    }

    /**
     * β, the scale of the log-ratio difference z.
     *
     * @return β &gt; 0
     */
    public double beta() {
        return beta;
    }

    /**
     * The label smoothing ε (cDPO: the assumed probability that a preference label is flipped).
     *
     * @return ε in [0, 0.5]; 0 unless the variant is sigmoid
     */
    public double labelSmoothing() {
        return labelSmoothing;
    }

    /**
     * The loss variant.
     *
     * @return sigmoid, hinge or ipo
     */
    public Type type() {
        return type;
    }

    /**
     * The loss, rewards, accuracy and gradients for B ≥ 1 pairs (all arrays of length B).
     *
     * @param policyChosen      π_c: the policy's sequence log-probabilities of the chosen responses (nats)
     * @param policyRejected    π_r: the policy's sequence log-probabilities of the rejected responses
     * @param referenceChosen   ρ_c: the frozen reference model's log-probabilities of the chosen responses
     * @param referenceRejected ρ_r: the reference's log-probabilities of the rejected responses
     * @return the mean loss, per-pair losses and rewards, the reward accuracy and ∂loss/∂π per pair
     * @throws IllegalArgumentException if an array is null (naming it), B = 0, the four lengths differ, an input is not finite, a pair's
     *                                  log-probs give a margin z that overflows a double (naming the pair and
     *                                  its four values), β makes a pair's loss, gradient or reward overflow a
     *                                  double (naming β and the pair), or the pairs' losses, each finite, sum
     *                                  past a double's range
     */
    public Result compute(double[] policyChosen, double[] policyRejected, double[] referenceChosen, double[] referenceRejected) {
        Args.given("DpoLoss.compute", "policyChosen", policyChosen);
        Args.given("DpoLoss.compute", "policyRejected", policyRejected);
        Args.given("DpoLoss.compute", "referenceChosen", referenceChosen);
        Args.given("DpoLoss.compute", "referenceRejected", referenceRejected);
        int n = policyChosen.length;
        if (n < 1) {
            throw new IllegalArgumentException("DPO needs at least one preference pair");
        }
        if (policyRejected.length != n || referenceChosen.length != n || referenceRejected.length != n) {
            throw new IllegalArgumentException("batch sizes differ: policy chosen " + n + ", policy rejected "
                    + policyRejected.length + ", reference chosen " + referenceChosen.length + ", reference rejected "
                    + referenceRejected.length);
        }
        double[] losses = new double[n];
        double[] chosen = new double[n];
        double[] rejected = new double[n];
        double[] gc = new double[n];
        double[] gr = new double[n];
        double sum = 0;
        int correct = 0;
        for (int b = 0; b < n; b++) {
            requireFinite("policy chosen", policyChosen[b], b);
            requireFinite("policy rejected", policyRejected[b], b);
            requireFinite("reference chosen", referenceChosen[b], b);
            requireFinite("reference rejected", referenceRejected[b], b);
            double z = (policyChosen[b] - policyRejected[b]) - (referenceChosen[b] - referenceRejected[b]);
            double l;
            double dl;
            switch (type) {
                case SIGMOID -> {
                    double bz = beta * z;
                    l = -(1 - labelSmoothing) * logSigmoid(bz) - labelSmoothing * logSigmoid(-bz);
                    dl = beta * (sigmoid(bz) - (1 - labelSmoothing));
                }
                case HINGE -> {
                    double m = 1 - beta * z;
                    l = Math.max(0.0, m);
                    dl = m > 0 ? -beta : 0.0;
                }
                case IPO -> {
                    double d = z - 1 / (2 * beta);
                    l = d * d;
                    dl = 2 * d;
                }
                default -> throw new IllegalStateException(type.toString());
            }
            losses[b] = l;
            sum += l;
            gc[b] = dl / n;
            gr[b] = -dl / n;
            chosen[b] = beta * (policyChosen[b] - referenceChosen[b]);
            rejected[b] = beta * (policyRejected[b] - referenceRejected[b]);
            if (!Double.isFinite(z)) {
                throw new IllegalArgumentException("pair " + b + ": the log-probs (policy chosen " + policyChosen[b]
                        + ", policy rejected " + policyRejected[b] + ", reference chosen " + referenceChosen[b]
                        + ", reference rejected " + referenceRejected[b] + ") give a log-ratio margin z that overflows a"
                        + " double (z=" + z + ")");
            }
            if (!Double.isFinite(l) || !Double.isFinite(dl) || !Double.isFinite(chosen[b]) || !Double.isFinite(rejected[b])) {
                throw new IllegalArgumentException("beta=" + beta + " overflows a double at pair " + b + " (" + type
                        + " loss, log-ratio margin z=" + z + "): loss " + l + ", gradient " + dl + ", rewards " + chosen[b]
                        + " and " + rejected[b] + "; use a beta within a few orders of magnitude of 0.1");
            }
            if (chosen[b] > rejected[b]) {
                correct++;
            }
        }
        if (!Double.isFinite(sum)) {  // every pair's loss finite, their sum not
            throw new IllegalArgumentException("the " + n + " pairs' losses, each finite, sum past a double's range (sum="
                    + sum + "); the largest is " + Arrays.stream(losses).max().orElse(Double.NaN));
        }
        return new Result(sum / n, losses, chosen, rejected, (double) correct / n, gc, gr);
    }

    private static void requireFinite(String what, double v, int pair) {
        if (!Double.isFinite(v)) {
            throw new IllegalArgumentException(what + " log-probability " + v + " at pair " + pair
                    + " is not finite: log-probabilities must be finite");
        }
    }

    /**
     * log σ(x) = −log(1 + e^(−x)), stable for every finite x (torch's logsigmoid).
     *
     * @param x any double
     * @return log σ(x) ≤ 0, without overflow (≈ x for large negative x)
     */
    public static double logSigmoid(double x) {
        return x >= 0 ? -Math.log1p(Math.exp(-x)) : x - Math.log1p(Math.exp(x));
    }

    /**
     * σ(x) = 1/(1 + e^(−x)), stable for every finite x.
     *
     * @param x any double
     * @return σ(x) in [0, 1]
     */

    public static double sigmoid(double x) {
        if (x >= 0) {
            return 1 / (1 + Math.exp(-x));
        }
        double e = Math.exp(x);
        return e / (1 + e);
    }
}
