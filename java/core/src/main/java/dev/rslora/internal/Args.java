package dev.rslora.internal;

/**
 * The null check of the module's public entry points: an IllegalArgumentException naming the method
 * and argument. In a package the module does not export: not part of the API.
 */
public final class Args {
    private Args() {
    }

    /**
     * @return {@code value}
     * @throws IllegalArgumentException "{@code method}: {@code name} is null" when value is null
     */
    public static <T> T given(String method, String name, T value) {
        if (value == null) {
            throw new IllegalArgumentException(method + ": " + name + " is null");
        }
        return value;
    }
}
