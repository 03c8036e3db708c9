package dev.rslora.train;

import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link DpoLoss} against TRL's formulas written out independently here, and its gradients against
 * central finite differences of the mean loss (seeded random batches, large |β·z| included).
 */
class DpoLossTest {

    /** TRL's dpo_loss for one pair, naively (no stability tricks: only used where it is exact enough). */
    private static double trl(DpoLoss.Type type, double beta, double eps, double pc, double pr, double rc, double rr) {
        double logits = (pc - pr) - (rc - rr);
        return switch (type) {
            case SIGMOID -> -Math.log(1 / (1 + Math.exp(-beta * logits))) * (1 - eps) - Math.log(1 / (1 + Math.exp(beta * logits))) * eps;
            case HINGE -> Math.max(0, 1 - beta * logits);
            case IPO -> Math.pow(logits - 1 / (2 * beta), 2);
        };
    }

    private static double[] batch(SplittableRandom rnd, int n, double lo, double hi) {
        double[] x = new double[n];
        for (int i = 0; i < n; i++) {
            x[i] = rnd.nextDouble(lo, hi);
        }
        return x;
    }

    @Test
    void lossRewardsAndAccuracyAreTrls() {
        long seed = 0xD9011L;
        SplittableRandom rnd = new SplittableRandom(seed);
        for (DpoLoss.Type type : DpoLoss.Type.values()) {
            for (double eps : type == DpoLoss.Type.SIGMOID ? new double[] {0, 0.1, 0.5} : new double[] {0}) {
                DpoLoss loss = new DpoLoss(0.1, eps, type);
                int n = 37;
                double[] pc = batch(rnd, n, -80, -5);
                double[] pr = batch(rnd, n, -80, -5);
                double[] rc = batch(rnd, n, -80, -5);
                double[] rr = batch(rnd, n, -80, -5);
                DpoLoss.Result r = loss.compute(pc, pr, rc, rr);
                double mean = 0;
                int correct = 0;
                for (int b = 0; b < n; b++) {
                    double want = trl(type, 0.1, eps, pc[b], pr[b], rc[b], rr[b]);
                    assertEquals(want, r.losses()[b], 1e-12 * (1 + Math.abs(want)), type + " eps " + eps + " pair " + b + " seed " + seed);
                    mean += want / n;
                    assertEquals(0.1 * (pc[b] - rc[b]), r.chosenRewards()[b], 1e-15);
                    assertEquals(0.1 * (pr[b] - rr[b]), r.rejectedRewards()[b], 1e-15);
                    if (r.chosenRewards()[b] > r.rejectedRewards()[b]) {
                        correct++;
                    }
                }
                assertEquals(mean, r.loss(), 1e-12);
                assertEquals((double) correct / n, r.rewardAccuracy());
            }
        }
    }

    @Test
    void gradientsMatchFiniteDifferences() {
        long seed = 0xD9012L;
        SplittableRandom rnd = new SplittableRandom(seed);
        for (DpoLoss.Type type : DpoLoss.Type.values()) {
            for (double beta : new double[] {0.1, 0.5, 2.0}) {
                double eps = type == DpoLoss.Type.SIGMOID ? 0.2 : 0;
                DpoLoss loss = new DpoLoss(beta, eps, type);
                int n = 9;
                double[] pc = batch(rnd, n, -30, -1);
                double[] pr = batch(rnd, n, -30, -1);
                double[] rc = batch(rnd, n, -30, -1);
                double[] rr = batch(rnd, n, -30, -1);
                DpoLoss.Result r = loss.compute(pc, pr, rc, rr);
                double h = 1e-6;
                for (int b = 0; b < n; b++) {
                    if (type == DpoLoss.Type.HINGE && Math.abs(1 - beta * ((pc[b] - pr[b]) - (rc[b] - rr[b]))) < 1e-3) {
                        continue;  // the kink of the hinge
                    }
                    for (int which = 0; which < 2; which++) {
                        double[] x = which == 0 ? pc : pr;
                        double keep = x[b];
                        x[b] = keep + h;
                        double up = loss.compute(pc, pr, rc, rr).loss();
                        x[b] = keep - h;
                        double down = loss.compute(pc, pr, rc, rr).loss();
                        x[b] = keep;
                        double fd = (up - down) / (2 * h);
                        double got = which == 0 ? r.gradPolicyChosen()[b] : r.gradPolicyRejected()[b];
                        assertEquals(fd, got, 1e-7 * (1 + Math.abs(fd)), type + " β=" + beta + " pair " + b + " "
                                + (which == 0 ? "chosen" : "rejected") + " seed " + seed);
                    }
                }
            }
        }
    }

    @Test
    void sigmoidIsStableForLargeMargins() {
        DpoLoss loss = DpoLoss.paper(0.1);
        // β·z = ±1e4: log σ must neither overflow nor lose the linear tail
        DpoLoss.Result r = loss.compute(new double[] {0, 0}, new double[] {-1e5, 1e5}, new double[] {0, 0}, new double[] {0, 0});
        assertEquals(0.0, r.losses()[0], 1e-300);
        assertEquals(1e4, r.losses()[1], 1e-9);
        assertEquals(0.0, r.gradPolicyChosen()[0], 1e-300);
        assertEquals(-0.1 / 2, r.gradPolicyChosen()[1], 1e-15, "σ(−∞)−1 = −1, times β/B");
        assertTrue(Double.isFinite(r.loss()));
        assertEquals(Math.log(2), loss.compute(new double[] {-3}, new double[] {-4}, new double[] {-3}, new double[] {-4}).loss(), 1e-15,
                "policy = reference: log 2");
    }

    @Test
    void refusesBadSettingsAndBatches() {
        assertThrows(IllegalArgumentException.class, () -> new DpoLoss(0, 0, DpoLoss.Type.SIGMOID));
        assertThrows(IllegalArgumentException.class, () -> new DpoLoss(0.1, 0.6, DpoLoss.Type.SIGMOID));
        assertThrows(IllegalArgumentException.class, () -> new DpoLoss(0.1, 0.1, DpoLoss.Type.HINGE));
        DpoLoss l = DpoLoss.paper(0.1);
        assertThrows(IllegalArgumentException.class, () -> l.compute(new double[0], new double[0], new double[0], new double[0]));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> l.compute(new double[2], new double[2], new double[3], new double[2]));
        assertTrue(e.getMessage().contains("reference chosen 3"), e.getMessage());
        assertEquals(DpoLoss.Type.IPO, DpoLoss.Type.fromName("ipo"));
        assertThrows(IllegalArgumentException.class, () -> DpoLoss.Type.fromName("robust"));
    }

    /** A β that makes a pair's loss, gradient or reward overflow is refused by name, as are non-finite inputs. */
    @Test
    void refusesOverflowAndNonFiniteLogProbabilities() {
        double[] c = {-30.0, -1.0};
        double[] r = {-2.0, -2.5};
        double[] rc = {-2.5, -1.5};
        double[] rr = {-2.0, -2.0};
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> DpoLoss.paper(1e308).compute(c, r, rc, rr));
        assertTrue(e.getMessage().contains("beta=1.0E308") && e.getMessage().contains("pair 0"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new DpoLoss(1e-320, 0, DpoLoss.Type.IPO).compute(c, r, rc, rr));
        assertTrue(e.getMessage().contains("beta=1.0E-320") && e.getMessage().contains("IPO"), e.getMessage());
        double[] bad = {-1.0, Double.NEGATIVE_INFINITY};
        e = assertThrows(IllegalArgumentException.class, () -> DpoLoss.paper(0.1).compute(c, bad, rc, rr));
        assertTrue(e.getMessage().contains("policy rejected") && e.getMessage().contains("pair 1")
                && e.getMessage().contains("-Infinity"), e.getMessage());
        // the same pairs at the paper's β are fine
        assertTrue(Double.isFinite(DpoLoss.paper(0.1).compute(c, r, rc, rr).loss()));
    }

    /** Finite log-probs whose margin z overflows are named, not β; finite losses whose sum overflows are refused. */
    @Test
    void namesTheLogProbsWhoseMarginOverflowsAndALossSumPastARange() {
        double[] zero = {0.0};
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> DpoLoss.paper(0.1).compute(new double[] {1e308}, new double[] {-1e308}, zero, zero));
        assertTrue(e.getMessage().startsWith("pair 0: the log-probs (policy chosen 1.0E308, policy rejected -1.0E308")
                && e.getMessage().contains("overflows") && !e.getMessage().contains("beta"), e.getMessage());
        // hinge at β = 1: each pair's loss 1 + 1.5e308 is finite, the two together are not
        double[] pc = {-1.5e308, -1.5e308};
        double[] z2 = {0.0, 0.0};
        e = assertThrows(IllegalArgumentException.class, () -> new DpoLoss(1.0, 0, DpoLoss.Type.HINGE).compute(pc, z2, z2, z2));
        assertTrue(e.getMessage().contains("the 2 pairs' losses, each finite, sum past a double's range"), e.getMessage());
    }

    /**
     * A null log-prob array was a bare NullPointerException ("Cannot read the array length because
     * \"policyChosen\" is null"); each is an IllegalArgumentException naming the argument. A null loss
     * type or type name was already refused by name.
     */
    @Test
    void nullArgumentsAreNamed() {
        DpoLoss l = DpoLoss.paper(0.1);
        double[] x = {-1.0};
        String[] names = {"policyChosen", "policyRejected", "referenceChosen", "referenceRejected"};
        for (int k = 0; k < names.length; k++) {
            double[][] args = {x, x, x, x};
            args[k] = null;
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> l.compute(args[0], args[1], args[2], args[3]));
            assertEquals("DpoLoss.compute: " + names[k] + " is null", e.getMessage());
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new DpoLoss(0.1, 0, null));
        assertEquals("loss type is null", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> DpoLoss.Type.fromName(null));
        assertTrue(e.getMessage().contains("got 'null'"), e.getMessage());
    }

    /** A hand-built Result with a null or short array is refused at construction, naming it (rewardMargin() threw an NPE). */
    @Test
    void aResultNamesANullOrShortArray() {
        double[] one = {0.5};
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new DpoLoss.Result(0.5, one, null, one, 1, one, one));
        assertEquals("DpoLoss.Result: chosenRewards is null", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new DpoLoss.Result(0.5, one, one, new double[2], 1, one, one));
        assertEquals("DpoLoss.Result: rejectedRewards holds 2 values, losses 1", e.getMessage());
        assertEquals(0.0, new DpoLoss.Result(0.5, one, one, one, 1, one, one).rewardMargin());
    }
}
