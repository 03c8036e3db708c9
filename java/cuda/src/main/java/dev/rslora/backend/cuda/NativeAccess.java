package dev.rslora.backend.cuda;

/**
 * Names a denied native access. With {@code --illegal-native-access=deny} (or in a future JDK where
 * that is the default), loading a library through {@code java.lang.foreign} or JNI from a module
 * without {@code --enable-native-access} throws IllegalCallerException: the probe reports that,
 * with the flag to add, instead of a missing driver or a broken JCuda.
 */
final class NativeAccess {
    private NativeAccess() {
    }

    /** The --enable-native-access value for module {@code m}: its name, or ALL-UNNAMED on the class path. */
    static String flagFor(Module m) {
        return "--enable-native-access=" + (m.isNamed() ? m.getName() : "ALL-UNNAMED");
    }

    /** "native access is denied to module X (what) : run java with --enable-native-access=X". */
    static String denied(Module m, String what) {
        String who = m.isNamed() ? "module " + m.getName() : "the class path (unnamed module)";
        return "native access is denied to " + who + " (" + what + "): run java with " + flagFor(m);
    }

    /** The IllegalCallerException in {@code t}'s cause chain, or null. */
    static IllegalCallerException deniedCause(Throwable t) {
        for (Throwable c = t; c != null; c = c.getCause()) {
            if (c instanceof IllegalCallerException e) {
                return e;
            }
        }
        return null;
    }
}
