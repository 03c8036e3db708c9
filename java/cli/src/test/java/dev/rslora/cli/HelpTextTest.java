package dev.rslora.cli;

import org.junit.jupiter.api.Test;
import picocli.CommandLine;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Every command's help renders cleanly, and `rslora --help` lists each command with a whole sentence. */
class HelpTextTest {

    /** picocli formats descriptions with String.format: a lone '%' makes it warn on System.err and print the raw text. */
    @Test
    void everyCommandsHelpRendersWithoutAPicocliWarning() {
        PrintStream old = System.err;
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        try {
            System.setErr(new PrintStream(captured, true, StandardCharsets.UTF_8));
            for (String name : new CommandLine(new Main()).getSubcommands().keySet()) {
                CliRun r = CliRun.of("help", name);
                assertEquals(0, r.code(), name + ": " + r.err());
                assertFalse(r.out().isBlank(), name);
            }
        } finally {
            System.setErr(old);
        }
        String err = captured.toString(StandardCharsets.UTF_8);
        assertFalse(err.contains("picocli WARN"), err);
    }

    /** `rslora init --help` failed as a usage error ("Missing required options"): every command takes -h/--help itself. */
    @Test
    void everyCommandTakesHelpAsAnOption() {
        for (String name : new CommandLine(new Main()).getSubcommands().keySet()) {
            String expected = CliRun.of("help", name).out();
            for (String flag : new String[] {"--help", "-h"}) {
                CliRun r = CliRun.of(name, flag);
                assertEquals(0, r.code(), name + " " + flag + ": " + r.err());
                assertEquals("", r.err(), name + " " + flag);
                assertTrue(r.out().contains("Usage: rslora " + name), name + " " + flag + ": " + r.out());
                if (!name.equals("help")) {
                    assertEquals(expected, r.out(), name + " " + flag);
                }
            }
        }
    }

    /** `rslora help --bogus` printed "Unknown subcommand" and exited 0: a help topic that is no command is a usage error. */
    @Test
    void helpForAnUnknownCommandIsAUsageError() {
        for (String topic : new String[] {"--bogus", "nosuch"}) {
            CliRun r = CliRun.of("help", topic);
            assertEquals(2, r.code(), "help " + topic + ": " + r.out() + r.err());
            assertTrue(r.err().contains(topic), r.err());
            assertEquals("", r.out(), "help " + topic);
        }
        assertEquals(0, CliRun.of("help").code());
        assertTrue(CliRun.of("help").out().contains("Usage: rslora"));
    }

    /**
     * `rslora --help` shows one line per command, the header or else the first description line: it
     * must not stop mid-sentence; demo's names both of its experiments.
     */
    @Test
    void theCommandListShowsEachCommandsFirstLineAsAWholeSentence() {
        for (Map.Entry<String, CommandLine> e : new CommandLine(new Main()).getSubcommands().entrySet()) {
            var usage = e.getValue().getCommandSpec().usageMessage();
            String[] shown = usage.header().length > 0 ? usage.header() : usage.description();
            assertTrue(shown.length > 0, e.getKey());
            String first = shown[0].strip();
            assertTrue(first.endsWith("."), e.getKey() + ": the command list's line is not a sentence: " + first);
        }
        String top = CliRun.of("--help").out();
        assertTrue(top.contains("rank sweep") && top.contains("--experiment dpo"), top);
    }
}
