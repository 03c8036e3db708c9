package dev.rslora.cli;

import java.lang.management.ManagementFactory;
import java.lang.management.MemoryPoolMXBean;
import java.lang.management.MemoryType;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Runs the CLI, then prints its memory high-water marks on one line for the streaming test:
 * {@code heap-peak-bytes} (the sum of every heap pool's peak: an upper bound on the peak heap
 * in use), {@code heap-max-bytes} (-Xmx) and {@code rss-peak-kb} (VmHWM: resident pages,
 * including the memory-mapped file pages the merge touched, which the kernel may drop at will).
 */
public final class HeapReport {
    private HeapReport() {
    }

    public static void main(String[] args) throws Exception {
        int code = Main.run(args);
        long peak = 0;
        for (MemoryPoolMXBean p : ManagementFactory.getMemoryPoolMXBeans()) {
            if (p.getType() == MemoryType.HEAP && p.getPeakUsage() != null) {
                peak += p.getPeakUsage().getUsed();
            }
        }
        String hwm = "unknown";
        Path status = Path.of("/proc/self/status");
        if (Files.isReadable(status)) {
            for (String line : Files.readAllLines(status)) {
                if (line.startsWith("VmHWM:")) {
                    hwm = line.substring(6).replace("kB", "").strip();
                }
            }
        }
        System.out.println("exit=" + code + " heap-peak-bytes=" + peak + " heap-max-bytes=" + Runtime.getRuntime().maxMemory()
                + " rss-peak-kb=" + hwm);
        System.exit(code);
    }
}
