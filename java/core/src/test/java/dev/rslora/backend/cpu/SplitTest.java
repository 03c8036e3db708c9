package dev.rslora.backend.cpu;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * How rows are cut into chunks: MC rows while the packed W stays cached (d = 1024: 4 MB), up to
 * MC_STREAMED rows when it is larger (d = 4096: 64 MB) as long as a chunk's rows fit CHUNK_BYTES,
 * whole tiles, chunks a multiple of the workers and at least two per worker where MC-row chunks
 * allow.
 */
class SplitTest {

    @Test
    void aCachedWKeepsChunksOfMcRows() {
        assertEquals(Split.padRows(64), Split.chunkRows(512, 2, 1024, 1024));
        assertEquals(Split.padRows(64), Split.chunkRows(2048, 2, 1024, 1024));
        assertEquals(Split.padRows(32), Split.chunkRows(64, 2, 1024, 1024), "one chunk per worker");
        // 1400 × 1400 fp32 is just under 8 MiB packed with any tile width
        assertTrue(Panels.bytes(1400, 1400) <= Split.W_CACHED_BYTES);
        assertEquals(Split.padRows(64), Split.chunkRows(2048, 2, 1400, 1400));
    }

    @Test
    void aStreamedWGetsLargerChunksButAtLeastTwoPerWorker() {
        assertEquals(Split.padRows(256), Split.chunkRows(2048, 2, 4096, 4096), "8 chunks of 256 rows");
        assertEquals(Split.padRows(128), Split.chunkRows(512, 2, 4096, 4096), "4 chunks, not 2 of 256 rows");
        assertEquals(Split.padRows(64), Split.chunkRows(512, 4, 4096, 4096), "8 chunks for 4 workers");
        assertEquals(Split.padRows(32), Split.chunkRows(64, 2, 4096, 4096), "as few rows as with a cached W");
        assertEquals(Split.padRows(256), Split.chunkRows(4096, 1, 4096, 4096));
        assertEquals(Split.padRows(256), Split.chunkRows(4096, 1, 1050, 2100), "W 2100 × 1050: 8.8 MB packed");
    }

    @Test
    void wideRowsKeepChunksWithinTheirByteBudget() {
        // an lm_head: 128k output columns of 512 KB per row; MC rows as with a cached W
        assertEquals(Split.MC, Split.streamedRows(4096, 128_000));
        assertEquals(Split.padRows(64), Split.chunkRows(8192, 2, 4096, 128_000));
        // 16k columns: as many whole tiles as fit 16 MB, fewer than MC_STREAMED
        int rows = Split.streamedRows(16_384, 4096);
        assertTrue(rows > Split.MC && rows < Split.MC_STREAMED && rows % MicroKernel.MR == 0, rows + " rows");
        assertTrue((long) rows * 4 * Split.ld(16_384) <= Split.CHUNK_BYTES, rows + " rows");
        assertTrue((long) (rows + MicroKernel.MR) * 4 * Split.ld(16_384) > Split.CHUNK_BYTES, rows + " rows");
    }

    @Test
    void everySplitIsWholeTilesWithinItsLimitAndCoversAllRows() {
        int[][] dims = {{1024, 1024}, {4096, 4096}, {4096, 16_384}, {4096, 128_000}, {3, 1_000_000}};
        for (int workers = 1; workers <= 5; workers++) {
            for (int n = 1; n <= 3000; n += 37) {
                for (int[] d : dims) {
                    int rows = Split.chunkRows(n, workers, d[0], d[1]);
                    boolean streamed = Panels.bytes(d[1], d[0]) > Split.W_CACHED_BYTES;
                    int limit = streamed ? Split.streamedRows(d[0], d[1]) : Split.MC;
                    String ctx = "n=" + n + " workers=" + workers + " d_in=" + d[0] + " d_out=" + d[1] + ": " + rows + " rows";
                    assertEquals(0, rows % MicroKernel.MR, ctx);
                    assertTrue(rows >= MicroKernel.MR && rows <= limit && limit >= Split.MC, ctx);
                    int chunks = (n + rows - 1) / rows;
                    int mcChunks = (n + Split.MC - 1) / Split.MC;
                    // never fewer chunks than MC-row chunks would give, up to two per worker
                    assertTrue(chunks >= Math.min(mcChunks, 2 * workers) || rows == MicroKernel.MR, ctx);
                }
            }
        }
    }

    @Test
    void rowCountsNearIntMaxAreCutWithoutOverflow() {
        // n + rows − 1 passes 2^31 here: chunkRows gave −56 rows, and the pass's chunk loop wrapped
        int[] ns = {Integer.MAX_VALUE, Integer.MAX_VALUE - 1, Integer.MAX_VALUE - 100, Integer.MAX_VALUE - 300};
        int[][] dims = {{1, 1}, {4096, 4096}, {4096, 128_000}};
        for (int n : ns) {
            for (int workers = 1; workers <= 3; workers++) {
                for (int[] d : dims) {
                    int rows = Split.chunkRows(n, workers, d[0], d[1]);
                    String ctx = "n=" + n + " workers=" + workers + " d_in=" + d[0] + " d_out=" + d[1] + ": " + rows + " rows";
                    assertTrue(rows >= MicroKernel.MR && rows <= Split.MC_STREAMED && rows % MicroKernel.MR == 0, ctx);
                    int chunks = Split.chunks(n, rows);
                    assertEquals((n + (long) rows - 1) / rows, chunks, ctx);
                    assertEquals(n, Split.chunkEnd(chunks - 1, rows, n), ctx + ": the last chunk ends at n");
                    assertEquals((long) (chunks - 1) * rows, Split.chunkEnd(chunks - 2, rows, n), ctx + ": the others are whole");
                    assertTrue(Split.chunkEnd(chunks - 1, rows, n) - (long) (chunks - 1) * rows >= 1, ctx + ": the last chunk is not empty");
                }
            }
        }
    }
}
