package dev.rslora.io;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The child JVM of {@link OnSignalTest}: registers cleanups around a staged output, closes one, and
 * exits with status 3 while the others are open ({@link System#exit} runs the shutdown hooks, as a
 * SIGTERM or Ctrl-C does). Each cleanup prints its name.
 */
final class OnSignalChild {
    private OnSignalChild() {
    }

    /**
     * Runs the scenario.
     *
     * @param args the folder to stage {@code out} in
     * @throws Exception if the scenario cannot be set up
     */
    public static void main(String[] args) throws Exception {
        Path dir = Path.of(args[0]);
        StagedOutput[] staged = new StagedOutput[1];
        OnSignal.register("outer", () -> {
            System.out.println("outer sees the staging folder: " + Files.exists(staged[0].dir()));
            try {
                OnSignal.register("late", () -> System.out.println("late"));
                System.out.println("late registered");
            } catch (IllegalStateException e) {
                System.out.println("late refused");
            }
        });
        OnSignal closed = OnSignal.register("closed", () -> System.out.println("closed"));
        staged[0] = StagedOutput.folder(dir.resolve("out"), false);
        Files.writeString(staged[0].dir().resolve("a.txt"), "a");
        OnSignal.register("inner", () -> {
            System.out.println("inner");
            Thread.currentThread().interrupt();   // left set: must not cut the next cleanup's wait short
            throw new IllegalStateException("boom");
        });
        closed.close();
        System.out.println("exiting");
        System.exit(3);
    }
}
