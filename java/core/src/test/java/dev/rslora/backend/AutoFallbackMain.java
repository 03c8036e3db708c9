package dev.rslora.backend;

/**
 * Run in a child JVM by {@link BackendsFallbackTest}: asks for {@code auto} twice and prints the
 * choices and the cuda placeholder's reason on stdout; the log record goes to stderr.
 */
public final class AutoFallbackMain {
    private AutoFallbackMain() {
    }

    /** Prints "chosen: NAME" twice and "cuda: REASON". */
    public static void main(String[] args) {
        System.out.println("chosen: " + Backends.get("auto").name());
        System.out.println("chosen: " + Backends.get("auto").name());
        System.out.println("cuda: " + Backends.probeAll().get("cuda").detail());
    }
}
