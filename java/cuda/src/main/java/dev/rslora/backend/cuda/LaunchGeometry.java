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

    /**
     * Most rows n a layer step takes: every path tiles n by 64 along gridDim.y somewhere (the v1/v2
     * down, forward and dX; the v1 fallback of a v3/v4 GEMM that refuses a shape; the split step's
     * down; the split-over-N groups), so n ≤ 65,535 · 64 = 4,194,240.
     */
    static final int MAX_ROWS = MAX_GRID_YZ * TILE;

    private LaunchGeometry() {
    }

    /**
     * Refuses a row count the kernels cannot launch, before any device work.
     *
     * @throws IllegalArgumentException naming n and {@link #MAX_ROWS} when n &gt; MAX_ROWS
     */
    static void checkRows(long n) {
        if (n > MAX_ROWS) {
            throw new IllegalArgumentException("n = " + n + " rows is more than the CUDA kernels take: at most " + MAX_ROWS
                    + " rows (" + MAX_GRID_YZ + " tiles of " + TILE + " rows along gridDim.y); split the batch");
        }
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
        return groupRows(n, tilesPerGroup);
    }

    /** tilesPerGroup · 64 as an int, or an error naming n when a group outgrows the kernels' int32 row count. */
    private static int groupRows(int n, long tilesPerGroup) {
        long rows = tilesPerGroup * TILE;
        if (rows > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("n = " + n + " rows: a row group of " + rows
                    + " rows does not fit the kernels' int32 row count (at most " + (Integer.MAX_VALUE / TILE * TILE) + " rows)");
        }
        return (int) rows;
    }

    /** ceil(n / rowsPerGroup) (in long arithmetic: n + rowsPerGroup may pass 2^31). */
    static int groups(int n, int rowsPerGroup) {
        return (int) (((long) n + rowsPerGroup - 1) / rowsPerGroup);
    }

    /** Bytes of the partials workspace: groups × outElems × 4. */
    static long workspaceBytes(int n, long outElems, int rowsPerGroup) {
        return (long) groups(n, rowsPerGroup) * outElems * 4;
    }

    /** Output tile of the v3 (Hopper) GEMMs: 128 rows (tokens) × 256 columns (cuda/kernels/lora_v3_launch.h). */
    static final int V3_TILE_M = 128;
    static final int V3_TILE_N = 256;

    /** ⌈a/b⌉ for positive longs. */
    static long cdiv(long a, long b) {
        return (a + b - 1) / b;
    }

    /** A 1-D grid of {@code blocks} blocks (checked against CUDA's 2³¹ − 1 limit). */
    static Grid flat(long blocks) {
        if (blocks < 1 || blocks > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(blocks + " blocks do not fit a 1-D grid (1 .. 2^31 - 1)");
        }
        return new Grid((int) blocks, 1, 1);
    }

    /**
     * The grid of a kernel-table grid rule for the GEMM-shaped rules of the v3/v4 families:
     * {@code persistent_dout_n} / {@code persistent_din_n} = min(SMs, ⌈n/128⌉·⌈cols/256⌉) (v3, one
     * persistent CTA per SM at most), {@code flat_<cols>_<m>x<n>} = ⌈n/m⌉·⌈cols/n⌉ (v4), cols = d_out or
     * d_in as the rule names. Throws naming an unknown rule.
     */
    static Grid gemmGrid(String rule, int sms, long n, long dIn, long dOut) {
        switch (rule) {
            case "persistent_dout_n" -> {
                return flat(Math.min(sms, cdiv(n, V3_TILE_M) * cdiv(dOut, V3_TILE_N)));
            }
            case "persistent_din_n" -> {
                return flat(Math.min(sms, cdiv(n, V3_TILE_M) * cdiv(dIn, V3_TILE_N)));
            }
            default -> {
                var m = java.util.regex.Pattern.compile("flat_(dout|din)_([0-9]+)x([0-9]+)").matcher(rule);
                if (!m.matches()) {
                    throw new IllegalArgumentException("unknown GEMM grid rule '" + rule + "'");
                }
                long cols = m.group(1).equals("dout") ? dOut : dIn;
                return flat(cdiv(n, Long.parseLong(m.group(2))) * cdiv(cols, Long.parseLong(m.group(3))));
            }
        }
    }

    // ---- the memory-bound kernels of the v3/v4 families (cuda/kernels/mb_*.cuh) -----------------------
    // Mirrors the grid rules mb_rows, mb_vdb, mb_da of cuda/kernels.table and their host side in
    // cuda/dev/steps.cuh (mb_rows_per_group, the mb fills): shape-only, so the sums' grouping (and so
    // the bits of dB and dA) is the same on every GPU.

    /** The mb grid rules aim at about this many blocks. */
    static final long MB_TARGET_BLOCKS = 128;

    /** The d_out columns one vdb block covers, by rank class (rsmb::vdb_chunk_cols: 96 KB of shared memory). */
    static int mbVdbChunkCols(int rmax) {
        return switch (rmax) {
            case 16 -> 1024;
            case 64 -> 256;
            default -> throw new IllegalArgumentException("no vdb kernel of rank class " + rmax + " (16 or 64)");
        };
    }

    /** ceil(r / rmax): the rank chunks a rank-class kernel runs (rmax 0: one). */
    static int rankChunks(int r, int rmax) {
        if (r < 1 || rmax < 0) {
            throw new IllegalArgumentException("rankChunks(r=" + r + ", rmax=" + rmax + ")");
        }
        return rmax == 0 ? 1 : (r + rmax - 1) / rmax;
    }

    /**
     * Rows per group of an mb split over n: about {@code want} groups (at least 1, at most one per
     * 64-row tile), at most {@code max(1, capBytes / (4·outElems))} of them. A multiple of 64.
     */
    static int mbRowsPerGroup(int n, long want, long outElems, long capBytes) {
        if (n < 1 || outElems < 1 || capBytes < 1) {
            throw new IllegalArgumentException("mbRowsPerGroup(n=" + n + ", outElems=" + outElems + ", capBytes=" + capBytes + ")");
        }
        long tiles = tiles(n);
        long groups = Math.min(Math.max(want, 1), tiles);
        groups = Math.min(groups, Math.max(1, capBytes / (outElems * 4)));
        return groupRows(n, (tiles + groups - 1) / groups);
    }

    /** An mb split: the grid and the partition the kernel's params carry. */
    record MbSplit(Grid grid, int rowsPerGroup, int groups, int colsPerChunk, int chunks, int rankChunks) {
    }

    /** down (rule mb_rows): grid (ceil(n/64), ceil(r/rmax)). */
    static Grid mbRows(int n, int r, int rmax) {
        return new Grid(tiles(n), rankChunks(r, rmax), 1);
    }

    /** vdb (rule mb_vdb): grid (rank chunks, column chunks of d_out, row groups). */
    static MbSplit mbVdb(int n, int dOut, int r, int rmax, long capBytes) {
        int rc = rankChunks(r, rmax);
        int cols = mbVdbChunkCols(rmax);
        int chunks = (dOut + cols - 1) / cols;
        long want = (MB_TARGET_BLOCKS + (long) chunks * rc - 1) / ((long) chunks * rc);
        int rpg = mbRowsPerGroup(n, want, (long) dOut * r, capBytes);
        int groups = groups(n, rpg);
        return new MbSplit(new Grid(rc, chunks, groups), rpg, groups, cols, chunks, rc);
    }

    /** da (rule mb_da): grid (rank chunks, ceil(d_in/64), row groups). */
    static MbSplit mbDa(int n, int dIn, int r, int rmax, long capBytes) {
        int rc = rankChunks(r, rmax);
        int chunks = tiles(dIn);
        long want = (MB_TARGET_BLOCKS + (long) chunks * rc - 1) / ((long) chunks * rc);
        int rpg = mbRowsPerGroup(n, want, (long) r * dIn, capBytes);
        int groups = groups(n, rpg);
        return new MbSplit(new Grid(rc, chunks, groups), rpg, groups, TILE, chunks, rc);
    }
}
