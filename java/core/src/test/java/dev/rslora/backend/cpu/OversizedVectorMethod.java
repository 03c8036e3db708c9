package dev.rslora.backend.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@link GraphSizeTest}'s positive control: one method whose C2 graph passes the inlining cutoff
 * halfway through (12 loads, 48 multiply-adds on 12 chains at about 470 nodes each as parsed on
 * JDK 25, then 12 stores), so that C2 delays vector calls whose results later calls use. The test expects to
 * find exactly that in the log; if it did not, its parser would be blind.
 */
final class OversizedVectorMethod {
    private static final VectorSpecies<Float> S = MicroKernel.SPECIES;

    private OversizedVectorMethod() {
    }

    /** The 12 vectors a_i of {@code in}, four rounds of a_i ← x·a_i + a_(i+1 mod 12), stored to out; returns out. */
    static float[] run(float[] in, float[] out, float x) {
        int l = S.length();
        FloatVector f = FloatVector.broadcast(S, x);
        FloatVector a0 = FloatVector.fromArray(S, in, 0), a1 = FloatVector.fromArray(S, in, l);
        FloatVector a2 = FloatVector.fromArray(S, in, 2 * l), a3 = FloatVector.fromArray(S, in, 3 * l);
        FloatVector a4 = FloatVector.fromArray(S, in, 4 * l), a5 = FloatVector.fromArray(S, in, 5 * l);
        FloatVector a6 = FloatVector.fromArray(S, in, 6 * l), a7 = FloatVector.fromArray(S, in, 7 * l);
        FloatVector a8 = FloatVector.fromArray(S, in, 8 * l), a9 = FloatVector.fromArray(S, in, 9 * l);
        FloatVector a10 = FloatVector.fromArray(S, in, 10 * l), a11 = FloatVector.fromArray(S, in, 11 * l);
        // four rounds, written out: 48 calls in the bytecode
        a0 = f.fma(a0, a1); a1 = f.fma(a1, a2); a2 = f.fma(a2, a3); a3 = f.fma(a3, a4);
        a4 = f.fma(a4, a5); a5 = f.fma(a5, a6); a6 = f.fma(a6, a7); a7 = f.fma(a7, a8);
        a8 = f.fma(a8, a9); a9 = f.fma(a9, a10); a10 = f.fma(a10, a11); a11 = f.fma(a11, a0);
        a0 = f.fma(a0, a1); a1 = f.fma(a1, a2); a2 = f.fma(a2, a3); a3 = f.fma(a3, a4);
        a4 = f.fma(a4, a5); a5 = f.fma(a5, a6); a6 = f.fma(a6, a7); a7 = f.fma(a7, a8);
        a8 = f.fma(a8, a9); a9 = f.fma(a9, a10); a10 = f.fma(a10, a11); a11 = f.fma(a11, a0);
        a0 = f.fma(a0, a1); a1 = f.fma(a1, a2); a2 = f.fma(a2, a3); a3 = f.fma(a3, a4);
        a4 = f.fma(a4, a5); a5 = f.fma(a5, a6); a6 = f.fma(a6, a7); a7 = f.fma(a7, a8);
        a8 = f.fma(a8, a9); a9 = f.fma(a9, a10); a10 = f.fma(a10, a11); a11 = f.fma(a11, a0);
        a0 = f.fma(a0, a1); a1 = f.fma(a1, a2); a2 = f.fma(a2, a3); a3 = f.fma(a3, a4);
        a4 = f.fma(a4, a5); a5 = f.fma(a5, a6); a6 = f.fma(a6, a7); a7 = f.fma(a7, a8);
        a8 = f.fma(a8, a9); a9 = f.fma(a9, a10); a10 = f.fma(a10, a11); a11 = f.fma(a11, a0);
        a0.intoArray(out, 0); a1.intoArray(out, l); a2.intoArray(out, 2 * l); a3.intoArray(out, 3 * l);
        a4.intoArray(out, 4 * l); a5.intoArray(out, 5 * l); a6.intoArray(out, 6 * l); a7.intoArray(out, 7 * l);
        a8.intoArray(out, 8 * l); a9.intoArray(out, 9 * l); a10.intoArray(out, 10 * l); a11.intoArray(out, 11 * l);
        return out;
    }
}
