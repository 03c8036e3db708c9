package dev.rslora.peft;

/** The null check of the package's public entry points: an IllegalArgumentException naming the method and argument. */
final class Args {
    private Args() {
    }

    /**
     * @return {@code value}
     * @throws IllegalArgumentException "{@code method}: {@code name} is null" when value is null
     */
    static <T> T given(String method, String name, T value) {
        if (value == null) {
            throw new IllegalArgumentException(method + ": " + name + " is null");
        }
        return value;
    }
}
