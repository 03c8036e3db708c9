package dev.rslora.simd;

import java.lang.management.ManagementFactory;

/** HotSpot's VM flags as this JVM reports them ({@code jdk.management}), for the decisions of this package. */
final class HotSpotFlags {
    private HotSpotFlags() {
    }

    /** The flag's value as text, or null where the JVM has no such flag or no jdk.management. */
    static String value(String name) {
        try {
            com.sun.management.HotSpotDiagnosticMXBean bean =
                    ManagementFactory.getPlatformMXBean(com.sun.management.HotSpotDiagnosticMXBean.class);
            return bean == null ? null : bean.getVMOption(name).getValue();
        } catch (IllegalArgumentException | LinkageError | SecurityException e) {
            return null;
        }
    }
}
