package dev.rslora.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

import java.io.PrintWriter;
import java.util.concurrent.Callable;

/**
 * {@code rslora help [COMMAND]}: the usage help of rslora, or of one command. A topic that names
 * no command is a usage error (exit 2, the message on stderr): picocli's own help command printed
 * "Unknown subcommand" and exited 0, so a script could not tell a typo from help shown.
 */
@Command(name = "help", helpCommand = true, header = "Shows the usage help of rslora or of one of its commands.",
        description = "Shows the usage help of rslora or of one of its commands.")
final class HelpCommand implements CommandLine.IHelpCommandInitializable2, Callable<Integer> {
    @Parameters(paramLabel = "COMMAND", arity = "0..1", description = "The command whose usage help to show.")
    private String[] topic;

    private CommandLine self;
    private CommandLine.Help.ColorScheme colors;
    private PrintWriter out;
    private PrintWriter err;

    @Override
    public void init(CommandLine helpCommandLine, CommandLine.Help.ColorScheme colorScheme, PrintWriter outWriter,
                     PrintWriter errWriter) {
        this.self = helpCommandLine;
        this.colors = colorScheme;
        this.out = outWriter;
        this.err = errWriter;
    }

    @Override
    public Integer call() {
        CommandLine parent = self.getParent() != null ? self.getParent() : self;
        if (!self.getUnmatchedArguments().isEmpty()) {  // picocli parses a help command leniently: "help --bogus" lands here
            throw new CommandLine.ParameterException(self, "help takes one command name, not " + self.getUnmatchedArguments());
        }
        if (topic == null || topic.length == 0) {
            parent.usage(out, colors);
            return 0;
        }
        CommandLine sub = parent.getSubcommands().get(topic[0]);
        if (sub == null) {
            // picocli ignores a help command's return value (it exits with the usage-help code): a parameter
            // error is what reaches Main's handler, which prints it and exits 2
            throw new CommandLine.ParameterException(self, "no command '" + topic[0] + "' to show help for: the commands are "
                    + String.join(", ", parent.getSubcommands().keySet()));
        }
        sub.usage(out, colors);
        return 0;
    }
}
