package dev.rslora.tensor;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * Two tensors of a list that share memory (in the sense of {@link Tensor#overlaps}), by their
 * indices in the list. For refusing a list of tensors that must each be their own memory (the
 * parameters of an optimizer, the gradients to clip) with a message that names the two.
 *
 * @param first  the index of the earlier tensor, ≥ 0
 * @param second the index of the later tensor, &gt; first
 */
public record Overlap(int first, int second) {

    /** Checks 0 ≤ first &lt; second. */
    public Overlap {
        if (first < 0 || second <= first) {
            throw new IllegalArgumentException("an overlap needs 0 <= first < second, got first=" + first + ", second=" + second);
        }
    }

    /**
     * The first pair of {@code tensors} that share memory: the smallest {@code second} whose tensor
     * shares memory with an earlier one, and the smallest such {@code first}. A tensor listed twice,
     * two tensors {@link Tensor#wrap}ped around one buffer and overlapping slices of one buffer
     * share memory; adjacent slices (one ends where the next begins), empty tensors and nulls share
     * none.
     *
     * <p>Cost: when no two share memory (the common case), one sort of the native tensors' start
     * and end addresses, O(n log n), plus a pairwise comparison of the heap-backed ones
     * ({@link MemorySegment#ofArray}; a heap address is an offset within its array, so only the
     * pairwise test can tell two arrays apart). When two do, O(log n) such sorts of prefixes of the
     * list find the smallest {@code second}, and one pass finds {@code first}.
     *
     * @param tensors the tensors, in the order the indices refer to; null entries are allowed
     * @return the first overlapping pair, or empty when every tensor has its own memory
     * @throws NullPointerException if tensors is null
     */
    public static Optional<Overlap> find(List<Tensor> tensors) {
        Tensor[] all = Objects.requireNonNull(tensors, "tensors").toArray(new Tensor[0]);
        if (!anyIn(all, all.length)) {
            return Optional.empty();
        }
        // a prefix of the list only gains overlaps as it grows: the shortest prefix holding one ends at `second`
        int lo = 2;
        int hi = all.length;
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            if (anyIn(all, mid)) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        int second = lo - 1;
        for (int first = 0; first < second; first++) {
            if (all[second].overlaps(all[first])) {
                return Optional.of(new Overlap(first, second));
            }
        }
        throw new IllegalStateException("tensor " + second + " overlaps an earlier one but none was found");
    }

    /**
     * Whether two of {@code all[0..count)} share memory. Native memory: sort the starts and the ends
     * separately; the (non-empty, half-open) ranges are pairwise disjoint exactly when the k-th
     * smallest start is at or past the (k−1)-th smallest end for every k (disjoint ranges sorted by
     * start are sorted by end too, and a start before the previous end means two ranges hold that
     * address). Heap memory: pairwise {@link Tensor#overlaps}.
     */
    private static boolean anyIn(Tensor[] all, int count) {
        long[] starts = new long[count];
        long[] ends = new long[count];
        int natives = 0;
        Tensor[] heap = null;
        int heaps = 0;
        for (int i = 0; i < count; i++) {
            if (all[i] == null) {
                continue;
            }
            MemorySegment s = all[i].readOnlySegment();
            if (s.byteSize() == 0) {
                continue;
            }
            if (s.isNative()) {
                starts[natives] = s.address();
                ends[natives] = s.address() + s.byteSize();
                natives++;
            } else {
                if (heap == null) {
                    heap = new Tensor[count];
                }
                for (int h = 0; h < heaps; h++) {
                    if (all[i].overlaps(heap[h])) {
                        return true;
                    }
                }
                heap[heaps++] = all[i];
            }
        }
        Arrays.sort(starts, 0, natives);
        Arrays.sort(ends, 0, natives);
        for (int k = 1; k < natives; k++) {
            if (starts[k] < ends[k - 1]) {
                return true;
            }
        }
        return false;
    }
}
