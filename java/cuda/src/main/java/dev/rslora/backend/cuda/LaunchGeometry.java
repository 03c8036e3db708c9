package dev.rslora.backend.cuda;

/**
 * Grid sizes of the version-1 kernels (every one runs 256 threads per block on 64×64 output
 * tiles; see the launch line in each {@code cuda/kernels/*.cuh}) and the split-over-N rule of the
 * two reductions (dB, dA). Pure functions, unit-tested without a device.
 */
final class LaunchGeometry {
    /** Threads per block of every kernel. */
    static final int THREADS = 256;
    /** Threads per block of the version-2 (tensor-core) kernels. */
    static final int THREADS_V2 = 128;
    /** Output tile edge (v1 and v2). */
    static final int TILE = 64;
    /** CUDA's limit on gridDim.y and gridDim.z. */
    static final int MAX_GRID_YZ = 65_535;
    /** Blocks of the grid-stride elementwise kernels (reduce, convert): enough to fill any current GPU. */
    static final int MAX_ELEMENTWISE_BLOCKS = 1 << 16;

    private LaunchGeometry() {
    }

    /** A grid (x, y, z). */
    record Grid(int x, int y, int z) {
        Grid {
            if (x < 1 || y < 1 || z < 1 || y > MAX_GRID_YZ || z > MAX_GRID_YZ) {
                throw new IllegalArgumentException("grid (" + x + ", " + y + ", " + z + ") is outside CUDA's limits"
                        + " (x >= 1, 1 <= y, z <= " + MAX_GRID_YZ + ")");
            }
        }
    }

    static int tiles(long extent) {
        if (extent < 1) {
            throw new IllegalArgumentException("extent must be >= 1, got " + extent);
        }
        long t = (extent + TILE - 1) / TILE;
        if (t > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("extent " + extent + " is too large");
        }
        return (int) t;
    }

    /** U = D(X)·Aᵀ [n, r]: (ceil(r/64), ceil(n/64)). */
    static Grid down(int n, int r) {
        return new Grid(tiles(r), tiles(n), 1);
    }

    /** Y [n, d_out]: (ceil(d_out/64), ceil(n/64)). */
    static Grid forward(int n, int dOut) {
        return new Grid(tiles(dOut), tiles(n), 1);
    }

    /** V and the dB partials: (ceil(r/64), groups). */
    static Grid backwardVdb(int r, int groups) {
        return new Grid(tiles(r), groups, 1);
    }

    /** dA partials [groups, r, d_in]: (ceil(d_in/64), ceil(r/64), groups). */
    static Grid backwardDa(int dIn, int r, int groups) {
        return new Grid(tiles(dIn), tiles(r), groups);
    }

    /** dX [n, d_in]: (ceil(d_in/64), ceil(n/64)). */
    static Grid backwardDx(int n, int dIn) {
        return new Grid(tiles(dIn), tiles(n), 1);
    }

    /** W [d_out, d_in]: (ceil(d_in/64), ceil(d_out/64)). */
    static Grid merge(int dOut, int dIn) {
        return new Grid(tiles(dIn), tiles(dOut), 1);
    }

    /** Grid-stride elementwise kernels over {@code count} elements. */
    static Grid elementwise(long count) {
        if (count < 1) {
            throw new IllegalArgumentException("count must be >= 1, got " + count);
        }
        long blocks = Math.min((count + THREADS - 1) / THREADS, MAX_ELEMENTWISE_BLOCKS);
        return new Grid((int) blocks, 1, 1);
    }

    /** Most pass-1 blocks of the gradient norm (its f64 partials workspace holds this many). */
    static final int MAX_GRAD_NORM_BLOCKS = 1024;

    /**
     * Pass-1 blocks of the two-pass gradient norm over {@code total} elements: min(ceil(total/256), 1024).
     * A function of {@code total} only (never of the device), so the norm's summation order, and so
     * its bits, are the same on every GPU.
     */
    static int gradNormBlocks(long total) {
        if (total < 1) {
            throw new IllegalArgumentException("total must be >= 1, got " + total);
        }
        return (int) Math.min((total + THREADS - 1) / THREADS, MAX_GRAD_NORM_BLOCKS);
    }

    /**
     * Rows per group of the split-over-N reductions: the fewest 64-row tiles per group such that the
     * partials (groups × outElems f32) fit in {@code capBytes}, i.e. as many groups as the cap allows
     * (at most one per 64-row tile, at least one). Always a multiple of 64.
     */
    static int rowsPerGroup(int n, long outElems, long capBytes) {
        if (n < 1 || outElems < 1 || capBytes < 1) {
            throw new IllegalArgumentException("rowsPerGroup(n=" + n + ", outElems=" + outElems + ", capBytes=" + capBytes + ")");
        }
        long tiles = tiles(n);
        long byCap = Math.max(1, capBytes / (outElems * 4));
        long groups = Math.min(tiles, byCap);
        long tilesPerGroup = (tiles + groups - 1) / groups;
        return (int) (tilesPerGroup * TILE);
    }

    /** ceil(n / rowsPerGroup). */
    static int groups(int n, int rowsPerGroup) {
        return (n + rowsPerGroup - 1) / rowsPerGroup;
    }

    /** Bytes of the partials workspace: groups × outElems × 4. */
    static long workspaceBytes(int n, long outElems, int rowsPerGroup) {
        return (long) groups(n, rowsPerGroup) * outElems * 4;
    }
}
