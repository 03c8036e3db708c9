package dev.rslora.testing;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import jdk.jfr.Recording;
import jdk.jfr.consumer.RecordedEvent;
import jdk.jfr.consumer.RecordedFrame;
import jdk.jfr.consumer.RecordedMethod;
import jdk.jfr.consumer.RecordingFile;

/**
 * Where some code allocates, for an allocation test's failure message or report: a JFR recording of
 * allocation samples while the code runs, summed by the allocated class, the JDK method that
 * allocated it and the nearest of the project's frames. A vector boxed by the Vector API's Java
 * fallback, or at a call that C2 left out of line, shows as {@code jdk.incubator.vector.Float512Vector}
 * (or its mask or shuffle) under the project's method that ran it; the JIT's state for that method,
 * not the allocation, is then the thing to look at (-XX:+PrintCompilation, -XX:+LogCompilation).
 */
public final class AllocationSites {
    /** Recording stops once the work, run again and again, allocated this much... */
    private static final long MIN_BYTES = 256L << 20;
    /** ...or after this long. */
    private static final long MAX_NANOS = 15_000_000_000L;

    private AllocationSites() {
    }

    /**
     * Runs {@code work} under a recording, again and again until it allocated {@link #MIN_BYTES}
     * or for {@link #MAX_NANOS}, and returns its {@code top} allocation sites by sampled
     * bytes, one per line with its share; or why there is no answer (no JFR in this JVM, or no
     * sample taken). Never throws: the caller must still report its own finding.
     */
    public static String of(Runnable work, int top) {
        java.util.Optional<Module> jfr = ModuleLayer.boot().findModule("jdk.jfr");
        if (jfr.isEmpty()) {
            return "  (no allocation sites: jdk.jfr is not in this JVM's boot layer)";
        }
        AllocationSites.class.getModule().addReads(jfr.get());
        try {
            return record(work, top);
        } catch (IOException | RuntimeException e) {
            return "  (no allocation sites: " + e + ")";
        }
    }

    private static String record(Runnable work, int top) throws IOException {
        Path file = Files.createTempFile("allocation-sites", ".jfr");
        try (Recording recording = new Recording()) {
            // every sample a TLAB refill offers, not the default 150 per second
            recording.enable("jdk.ObjectAllocationSample").with("throttle", "off").withStackTrace();
            recording.enable("jdk.Deoptimization").withoutStackTrace();
            recording.start();
            // enough samples to rank the sites: a sample comes with each TLAB the thread fills, MBs
            var threads = Allocations.counter();
            long start = System.nanoTime();
            long first = threads.getCurrentThreadAllocatedBytes();
            do {
                work.run();
            } while (threads.getCurrentThreadAllocatedBytes() - first < MIN_BYTES && System.nanoTime() - start < MAX_NANOS);
            recording.stop();
            recording.dump(file);
            List<RecordedEvent> events = RecordingFile.readAllEvents(file);
            List<RecordedEvent> samples = events.stream()
                    .filter(e -> e.getEventType().getName().equals("jdk.ObjectAllocationSample") && e.getThread() != null
                            && e.getThread().getJavaThreadId() == Thread.currentThread().threadId())
                    .sorted(Comparator.comparing(RecordedEvent::getStartTime)).toList();
            Map<String, Long> bytes = new HashMap<>();
            Map<String, String> methods = new HashMap<>();  // site -> its project method, "Holder.name"
            long total = 0;
            // a sample weighs the bytes since the thread's previous one: the first weighs all before the recording
            for (RecordedEvent event : samples.subList(Math.min(1, samples.size()), samples.size())) {
                long weight = event.getLong("weight");
                String site = site(event);
                bytes.merge(site, weight, Long::sum);
                projectMethod(event).ifPresent(m -> methods.put(site, m));
                total += weight;
            }
            if (total == 0) {
                return "  (no allocation sites: the recording took under two samples on this thread)";
            }
            StringBuilder out = new StringBuilder("  allocation sites (JFR samples on this thread, " + total / 1024 + " KB sampled):");
            long all = total;
            String codes = codeList();
            bytes.entrySet().stream().sorted(Map.Entry.<String, Long>comparingByValue().reversed()).limit(top)
                    .forEach(e -> out.append(String.format("%n    %3d %%  %s%s", Math.round(100.0 * e.getValue() / all), e.getKey(),
                            methods.containsKey(e.getKey()) ? "; ran in " + methods.get(e.getKey()).replaceFirst("^.*\\.(\\w+\\.)", "$1")
                                    + ", " + tiers(codes, methods.get(e.getKey())) : "")));
            // the same bytes by the compiled method that ran them: boxed vectors spread over many lines of one method
            Map<String, Long> byMethod = new HashMap<>();
            bytes.forEach((site, b) -> byMethod.merge(methods.getOrDefault(site, "no project frame"), b, Long::sum));
            out.append("\n  the same by the method whose code ran them:");
            byMethod.entrySet().stream().sorted(Map.Entry.<String, Long>comparingByValue().reversed()).limit(top)
                    .forEach(e -> out.append(String.format("%n    %3d %%  %s, %s", Math.round(100.0 * e.getValue() / all),
                            e.getKey(), tiers(codes, e.getKey()))));
            Map<String, Long> deopts = new TreeMap<>();
            for (RecordedEvent event : events) {
                if (event.getEventType().getName().equals("jdk.Deoptimization") && event.getValue("method") != null) {
                    RecordedMethod m = event.getValue("method");
                    deopts.merge(m.getType().getName() + "." + m.getName() + ":" + event.getInt("lineNumber") + " "
                            + event.getString("reason") + "/" + event.getString("action"), 1L, Long::sum);
                }
            }
            out.append("\n  deoptimizations while recording: ").append(deopts.isEmpty() ? "none" : "");
            deopts.forEach((k, v) -> out.append(String.format("%n    %5d  %s", v, k)));
            return out.toString();
        } finally {
            Files.deleteIfExists(file);
        }
    }

    /**
     * The method whose code ran the sample's innermost project frame, as "package.Holder.name" (the
     * code list's spelling): that frame's own method, or where it was inlined, the compiled method
     * it was inlined into (the next frame out that is not "Inlined").
     */
    private static java.util.Optional<String> projectMethod(RecordedEvent event) {
        List<RecordedFrame> frames = event.getStackTrace() == null ? List.of() : event.getStackTrace().getFrames();
        boolean inProject = false;
        for (RecordedFrame frame : frames) {
            String holder = frame.getMethod().getType().getName();
            inProject |= holder.startsWith("dev.rslora.") && !holder.startsWith("dev.rslora.testing.");
            if (inProject && !frame.getType().equals("Inlined")) {
                return java.util.Optional.of(holder + "." + frame.getMethod().getName());
            }
        }
        return java.util.Optional.empty();
    }

    /**
     * HotSpot's compiled code, one "id tier state method" line per nmethod (jcmd Compiler.codelist),
     * or "" where this JVM has no such command.
     */
    private static String codeList() {
        try {
            Object list = java.lang.management.ManagementFactory.getPlatformMBeanServer().invoke(
                    new javax.management.ObjectName("com.sun.management:type=DiagnosticCommand"), "compilerCodelist",
                    new Object[] {null}, new String[] {String[].class.getName()});
            return list instanceof String text ? text : "";
        } catch (javax.management.JMException | RuntimeException e) {
            return "";
        }
    }

    /**
     * The tiers of a method's code in use, e.g. "compiled at tier 4" (C2) or "tier 3" (C1 with
     * profiling: every vector boxed), from {@link #codeList()}; "not compiled" where none is.
     */
    private static String tiers(String codes, String method) {
        String prefix = method + "(";
        List<String> tiers = codes.lines().map(l -> l.split(" ", 4)).filter(f -> f.length == 4 && f[3].startsWith(prefix) && f[2].equals("0"))
                .map(f -> f[1]).sorted().distinct().toList();
        return codes.isEmpty() ? "tiers unknown" : tiers.isEmpty() ? "not compiled" : "compiled at tier " + String.join(", ", tiers);
    }

    /** "Class from jdk.Method under project.Method:line", from the sample's stack. */
    private static String site(RecordedEvent event) {
        String type = event.getClass("objectClass").getName();
        List<RecordedFrame> frames = event.getStackTrace() == null ? List.of() : event.getStackTrace().getFrames();
        String allocator = frames.isEmpty() ? "?" : name(frames.get(0));
        String ours = "no project frame";
        for (RecordedFrame frame : frames) {
            String holder = frame.getMethod().getType().getName();
            if (holder.startsWith("dev.rslora.") && !holder.startsWith("dev.rslora.testing.")) {
                ours = name(frame) + ":" + frame.getLineNumber() + " (" + frame.getType() + ")";
                break;
            }
        }
        return type + " from " + allocator + " under " + ours;
    }

    private static String name(RecordedFrame frame) {
        String holder = frame.getMethod().getType().getName();
        return holder.substring(holder.lastIndexOf('.') + 1) + "." + frame.getMethod().getName();
    }
}
