package dev.rslora.optim;

import java.util.Arrays;

/** The element count of an optimizer state entry's shape, checked (the entries of AdamW and Adafactor). */
final class ShapeCount {
    private ShapeCount() {
    }

    /**
     * The product of {@code shape}'s dimensions: 0 when one is 0, whatever the others (a [2^62, 4, 0]
     * shape holds no element), else checked against overflow.
     *
     * @param entry the entry's name, for the messages
     * @param shape the dimensions
     * @return the number of elements
     * @throws IllegalArgumentException naming the entry when a dimension is negative or the count passes 2^63 − 1
     */
    static long of(String entry, long[] shape) {
        boolean empty = false;
        for (long d : shape) {
            if (d < 0) {
                throw new IllegalArgumentException("entry " + entry + ": negative dimension in shape " + Arrays.toString(shape));
            }
            empty |= d == 0;
        }
        if (empty) {
            return 0;
        }
        long n = 1;
        for (long d : shape) {
            try {
                n = Math.multiplyExact(n, d);
            } catch (ArithmeticException e) {
                throw new IllegalArgumentException("entry " + entry + ": shape " + Arrays.toString(shape)
                        + " has more than 2^63 - 1 elements", e);
            }
        }
        return n;
    }
}
