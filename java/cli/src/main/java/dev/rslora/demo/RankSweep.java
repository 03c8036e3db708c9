package dev.rslora.demo;

import dev.rslora.backend.Backend;
import dev.rslora.core.Scaling;

import java.util.ArrayList;
import java.util.List;

/**
 * The rank-sweep experiment: for each seed, builds the frozen network and teacher, and trains one
 * student per (scaling, rank) in lockstep, so that every student of a seed sees exactly the same
 * batches. Students of one seed share A's initialisation per rank (the adapter seed is the
 * seed's); LoRA and rsLoRA at the same rank therefore differ only in γ.
 */
public final class RankSweep {
    private static final long STREAM_ADAPTER = 40;
    private static final Scaling[] SCALINGS = {Scaling.LORA, Scaling.RSLORA};

    private RankSweep() {
    }

    /**
     * Runs the sweep on {@code backend}, reporting one progress unit per (seed, step).
     *
     * @param c        the settings
     * @param backend  the backend every layer runs on
     * @param progress told of each (seed, step) done
     * @return every run's curves and the wall time
     */
    public static SweepResult run(SweepConfig c, Backend backend, SweepProgress progress) {
        long started = System.nanoTime();
        List<RunCurve> curves = new ArrayList<>();
        List<Long> seeds = c.seedValues();
        progress.start((long) seeds.size() * c.steps());
        try {
            for (int si = 0; si < seeds.size(); si++) {
                long seed = seeds.get(si);
                String label = "seed " + (si + 1) + "/" + seeds.size();
                curves.addAll(runSeed(c, seed, backend, progress, label));
            }
        } finally {
            progress.finish();
        }
        return new SweepResult(c, backend.name(), curves, (System.nanoTime() - started) / 1e9);
    }

    private static List<RunCurve> runSeed(SweepConfig c, long seed, Backend backend, SweepProgress progress, String label) {
        long adapterSeed = RandomMatrices.subSeed(seed, STREAM_ADAPTER);
        List<Student> students = new ArrayList<>();
        List<RunCurve> curves = new ArrayList<>();
        try (FrozenNetwork net = new FrozenNetwork(c, seed, backend)) {
            for (Scaling s : SCALINGS) {
                for (int r : c.ranks()) {
                    students.add(new Student(net, s, r, c, adapterSeed, backend));
                    curves.add(new RunCurve(s, r, seed, new double[c.steps()], new double[c.steps()]));
                }
            }
            for (int t = 0; t < c.steps(); t++) {
                net.nextBatch();
                for (int k = 0; k < students.size(); k++) {
                    Student.StepRecord rec = students.get(k).step(net.input(), net.target());
                    curves.get(k).loss()[t] = rec.loss();
                    curves.get(k).gradNorm()[t] = rec.gradNorm();
                }
                progress.advance(label);
            }
        } finally {
            for (Student s : students) {
                s.close();
            }
        }
        return curves;
    }
}
