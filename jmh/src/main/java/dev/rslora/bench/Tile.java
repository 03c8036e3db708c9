package dev.rslora.bench;

import dev.rslora.backend.cpu.CpuBackend;

/**
 * The cpu backend's register-tile shape as a benchmark parameter: "auto" (the JIT's widest), or
 * 512, 256, 128, 0 (scalar), forced with rslora.cpu.vectorBits before the backend's classes load
 * (so call {@link #apply} before anything touches the backend in the forked JVM) and verified, so
 * every result names the shape it ran. jmh/bench.sh also limits the JIT's vectors for the 256- and
 * 128-bit runs (-XX:MaxVectorSize=32 / 16), as on such machines.
 */
final class Tile {
    private Tile() {
    }

    static void apply(String tile) {
        if (!tile.equals("auto")) {
            System.setProperty("rslora.cpu.vectorBits", tile);
            if (CpuBackend.vectorBits() != Integer.parseInt(tile)) {
                throw new IllegalStateException("tile=" + tile + " requested but the cpu backend runs " + CpuBackend.tileShape()
                        + " (was the backend loaded earlier in this JVM, or are this JVM's vectors narrower?)");
            }
        }
        System.out.println("\ncpu backend tile: " + CpuBackend.tileShape());
    }
}
