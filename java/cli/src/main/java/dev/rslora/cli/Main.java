package dev.rslora.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * The {@code rslora} command line. Subcommands hold no math: they parse, validate, call the
 * library and report. Errors print one line ({@code rslora: error: …}) and exit non-zero.
 */
// INHERIT: every subcommand takes -h/--help (and -V) too; without it 'rslora init --help' was a usage error
@Command(name = "rslora", mixinStandardHelpOptions = true, version = "rslora 0.1.0", scope = CommandLine.ScopeType.INHERIT,
        description = "Fused rank-stabilized LoRA (rsLoRA) layers for the JVM.",
        subcommands = {DemoCommand.class, LayerCommand.class, OptimizerStepCommand.class, DpoLossCommand.class, InitCommand.class,
                MergeCommand.class, InspectCommand.class,
                InfoCommand.class, HelpCommand.class})
public final class Main {

    /** The JDK's message when malloc refuses an off-heap allocation (Arena.allocate, Unsafe.allocateMemory). */
    private static final java.util.regex.Pattern OFF_HEAP = java.util.regex.Pattern.compile("Unable to allocate (\\d+) bytes");

    /** Instantiated by picocli as the top-level command; run the CLI with {@link #run}. */
    public Main() {
    }

    /**
     * Runs the CLI and exits the JVM with its exit code.
     *
     * @param args the command line, e.g. {@code demo --quick} ({@code --help} lists the commands)
     */
    public static void main(String[] args) {
        System.exit(run(args));
    }

    /**
     * Runs the CLI and returns its exit code (0 ok, 1 error, 2 usage).
     *
     * @param args the command line
     * @return 0 on success, 1 on an error, 2 on a usage error
     */
    public static int run(String... args) {
        return run(new java.io.PrintWriter(System.out, true), new java.io.PrintWriter(System.err, true), args);
    }

    /**
     * Runs the CLI with the given output streams (for tests) and returns its exit code.
     *
     * @param out  receives normal output
     * @param err  receives errors and usage messages
     * @param args the command line
     * @return 0 on success, 1 on an error, 2 on a usage error
     */
    public static int run(java.io.PrintWriter out, java.io.PrintWriter err, String... args) {
        // One-line log records (the backend choice) instead of JUL's two-line default.
        if (System.getProperty("java.util.logging.SimpleFormatter.format") == null) {
            System.setProperty("java.util.logging.SimpleFormatter.format", "%5$s%n");
        }
        CommandLine cl = new CommandLine(new Main());
        // an empty path would mean the working folder: refuse it where it is given, as a usage error
        cl.registerConverter(java.nio.file.Path.class, Main::path);
        cl.setOut(out);
        cl.setErr(err);
        cl.setExecutionExceptionHandler((ex, cmd, parseResult) -> {
            cmd.getErr().println("rslora: error: " + oneLine(ex));
            if (Boolean.getBoolean("rslora.debug")) {
                ex.printStackTrace(cmd.getErr());
            }
            return 1;
        });
        cl.setParameterExceptionHandler((ex, badArgs) -> {
            CommandLine failed = ex.getCommandLine();
            String help = failed.getParent() == null || failed.getCommandSpec().helpCommand() ? "rslora --help"
                    : "rslora help " + failed.getCommandName();
            failed.getErr().println("rslora: error: " + oneLine(ex) + " (see '" + help + "')");
            return 2;
        });
        try {
            return cl.execute(args);
        } catch (OutOfMemoryError e) {
            // picocli hands only Exceptions to the handler above; an Error (a rank or width too large
            // to allocate) would otherwise escape as a stack trace
            err.println("rslora: error: " + oneLine(e));
            if (Boolean.getBoolean("rslora.debug")) {
                e.printStackTrace(err);
            }
            err.flush();
            return 1;
        }
    }

    /**
     * A path argument. Refused: an empty one (it would mean the working folder); one holding U+FFFD,
     * which is what the JVM makes of bytes that are not valid in the locale's encoding (a file named
     * with byte 0xFF in a UTF-8 locale, or any non-ASCII name in the C locale): as given, it names
     * another file than the one on disk, and an output would be written under that other name (a name
     * that really holds U+FFFD is refused too); and one the JDK refuses (a NUL character), with its
     * reason.
     */
    static java.nio.file.Path path(String s) {
        if (s.isBlank()) {
            throw new CommandLine.TypeConversionException("a path must not be empty");
        }
        String encoding = System.getProperty("sun.jnu.encoding", "the locale's encoding");
        if (s.indexOf('\uFFFD') >= 0) {
            boolean utf8 = encoding.equalsIgnoreCase("UTF-8");
            throw new CommandLine.TypeConversionException("the path " + s + " holds bytes that are not valid " + encoding
                    + " (shown as \uFFFD): the JVM cannot name that file; " + (utf8 ? "rename it"
                    : "run in a UTF-8 locale (e.g. LC_ALL=C.UTF-8), or rename it"));
        }
        try {
            return java.nio.file.Path.of(s);
        } catch (java.nio.file.InvalidPathException e) {
            String why = String.valueOf(e.getReason());
            boolean encodingFault = why.contains("Malformed") || why.contains("unmappable");
            throw new CommandLine.TypeConversionException("the path " + s.replace("\0", "\\0") + " is not valid here ("
                    + why + (encodingFault ? " in " + encoding + ", this locale's encoding): run in a UTF-8 locale"
                    + " (e.g. LC_ALL=C.UTF-8) or rename it" : ")"));
        }
    }

    /** The exception's message on one line (its class name when it has none). */
    static String oneLine(Throwable ex) {
        if (ex instanceof java.nio.file.NoSuchFileException e) {
            return e.getReason() != null ? e.getFile() + ": " + e.getReason() : "no such file: " + e.getFile();
        }
        if (ex instanceof java.nio.file.AccessDeniedException e) {
            return e.getReason() != null ? e.getFile() + ": " + e.getReason() : "permission denied: " + e.getFile();
        }
        // the JDK throws these with the path as the whole message (e.g. Files.createDirectories over a dangling link)
        if (ex instanceof java.nio.file.FileAlreadyExistsException e && e.getReason() == null) {
            return "already exists: " + e.getFile();
        }
        if (ex instanceof java.nio.file.NotDirectoryException e && e.getReason() == null) {
            return "not a folder: " + e.getFile();
        }
        if (ex instanceof OutOfMemoryError e) {
            return outOfMemory(e);
        }
        String m = ex.getMessage();
        if (m == null || m.isBlank()) {
            m = ex.getClass().getSimpleName();
        }
        return m.replace('\n', ' ').replace('\r', ' ');
    }

    /**
     * An OutOfMemoryError with the hint that fits where the memory ran out. Tensors live off the
     * Java heap (an {@link java.lang.foreign.Arena} allocates them with malloc), so raising -Xmx
     * helps only when the heap itself is full; the JDK says which it was in the message:
     * "Unable to allocate N bytes" (malloc refused an off-heap segment: the machine's memory is the
     * limit), "Cannot reserve N bytes of direct buffer memory (…)" (the -XX:MaxDirectMemorySize
     * budget of direct buffers and auto arenas), "Java heap space" / "GC overhead limit exceeded"
     * (the heap: -Xmx), "Requested array size exceeds VM limit" (one Java array longer than any
     * heap can hold).
     */
    static String outOfMemory(OutOfMemoryError e) {
        String m = e.getMessage() == null ? "" : e.getMessage().replace('\n', ' ').replace('\r', ' ').strip();
        java.util.regex.Matcher offHeap = OFF_HEAP.matcher(m);
        if (offHeap.matches()) {
            return "out of memory: off-heap allocation of " + offHeap.group(1) + " bytes failed (tensors live outside the Java "
                    + "heap: the machine's free memory or a ulimit/container limit bounds them, not -Xmx)";
        }
        if (m.startsWith("Cannot reserve ") && m.contains("direct buffer memory")) {
            return "out of memory: " + m + " (raise -XX:MaxDirectMemorySize via RSLORA_JAVA_OPTS)";
        }
        if (m.equals("Java heap space") || m.equals("GC overhead limit exceeded")) {
            return "out of memory: " + m + " (raise -Xmx via RSLORA_JAVA_OPTS)";
        }
        if (m.equals("Requested array size exceeds VM limit")) {
            return "out of memory: " + m + " (one Java array longer than the JVM allows; -Xmx does not help)";
        }
        return "out of memory: " + (m.isEmpty() ? "the JVM gave no detail" : m);
    }
}
