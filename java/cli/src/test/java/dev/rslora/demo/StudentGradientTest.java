package dev.rslora.demo;

import dev.rslora.backend.Backend;
import dev.rslora.backend.reference.ReferenceBackend;
import dev.rslora.core.Scaling;
import dev.rslora.tensor.Tensor;
import dev.rslora.train.Parameter;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The student's gradients (tanh, MSE and both LoRA layers chained) against central finite
 * differences of its loss, along each tensor's own gradient and along a random direction.
 */
class StudentGradientTest {
    private final Backend ref = new ReferenceBackend();

    @ParameterizedTest
    @EnumSource(Scaling.class)
    void gradientsMatchFiniteDifferencesOfTheLoss(Scaling scaling) {
        long seed = 8;
        SweepConfig c = SweepConfig.defaults().withDim(24).withBatch(32).withRanks(List.of(4))
                .withOptimizer(SweepConfig.PROTOTYPE_OPTIMIZER.withLr(1e-2));
        try (FrozenNetwork net = new FrozenNetwork(c, seed, ref);
             Student s = new Student(net, scaling, 4, c, 77, ref)) {
            for (int t = 0; t < 5; t++) { // move B away from zero so that dA is not zero
                net.nextBatch();
                s.step(net.input(), net.target());
            }
            net.nextBatch();
            s.lossAndGradients(net.input(), net.target());
            List<Parameter> params = s.parameters();
            List<float[]> grads = new ArrayList<>();
            for (Parameter p : params) {
                grads.add(p.grad().toFloatArray());
            }
            for (int k = 0; k < params.size(); k++) {
                // direction: tensor k's own gradient, zero elsewhere
                List<double[]> dir = new ArrayList<>();
                double norm = 0;
                for (float g : grads.get(k)) {
                    norm += (double) g * g;
                }
                norm = Math.sqrt(norm);
                assertNotEquals(0.0, norm, params.get(k).name() + " has a zero gradient");
                for (int j = 0; j < params.size(); j++) {
                    double[] d = new double[grads.get(j).length];
                    if (j == k) {
                        for (int i = 0; i < d.length; i++) {
                            d[i] = grads.get(j)[i] / norm;
                        }
                    }
                    dir.add(d);
                }
                check(s, net, params, dir, norm, 2e-3, scaling + " " + params.get(k).name());
            }
            // a random unit direction over all four tensors
            SplittableRandom rng = new SplittableRandom(seed);
            List<double[]> dir = new ArrayList<>();
            double len = 0;
            for (float[] g : grads) {
                double[] d = new double[g.length];
                for (int i = 0; i < d.length; i++) {
                    d[i] = rng.nextGaussian();
                    len += d[i] * d[i];
                }
                dir.add(d);
            }
            double dot = 0;
            for (int j = 0; j < grads.size(); j++) {
                for (int i = 0; i < grads.get(j).length; i++) {
                    dir.get(j)[i] /= Math.sqrt(len);
                    dot += dir.get(j)[i] * grads.get(j)[i];
                }
            }
            // a smaller derivative (about ‖g‖/√P), so fp32 noise of the loss weighs more: 1 %
            check(s, net, params, dir, dot, 1e-2, scaling + " random direction");
        }
    }

    /** (L(θ + εd) − L(θ − εd)) / 2ε against the analytic directional derivative. */
    private static void check(Student s, FrozenNetwork net, List<Parameter> params, List<double[]> dir, double want,
                              double rtol, String what) {
        double eps = 1e-2;
        List<float[]> orig = new ArrayList<>();
        for (Parameter p : params) {
            orig.add(p.value().toFloatArray());
        }
        double plus = lossAt(s, net, params, orig, dir, eps);
        double minus = lossAt(s, net, params, orig, dir, -eps);
        lossAt(s, net, params, orig, dir, 0);
        double fd = (plus - minus) / (2 * eps);
        assertEquals(want, fd, rtol * Math.abs(want) + 1e-9, what + ": analytic " + want + " vs finite difference " + fd);
        assertTrue(Math.abs(want) > 1e-6, what + ": directional derivative too small to test: " + want);
    }

    private static double lossAt(Student s, FrozenNetwork net, List<Parameter> params, List<float[]> orig, List<double[]> dir,
                                 double eps) {
        for (int j = 0; j < params.size(); j++) {
            Tensor v = params.get(j).value();
            for (int i = 0; i < orig.get(j).length; i++) {
                v.set(i, (float) (orig.get(j)[i] + eps * dir.get(j)[i]));
            }
        }
        return s.loss(net.input(), net.target());
    }
}
