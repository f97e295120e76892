using System.CommandLine;
using Microsoft.Extensions.Logging;

namespace Pip.Cli.Infrastructure;

/// <summary>Options every command accepts (recursive options of the root command).</summary>
internal static class GlobalOptions
{
    /// <summary>The name of the log-level option.</summary>
    public const string LogLevelName = "--log-level";

    /// <summary><c>--log-level</c>: the least severe log messages shown on standard error.</summary>
    public static Option<LogLevel> CreateLogLevel() => new(LogLevelName)
    {
        Description = "Least severe log messages written to standard error: Trace, Debug, Information, Warning, Error, Critical or None.",
        DefaultValueFactory = _ => LogLevel.Information,
        Recursive = true,
        HelpName = "level",
    };

    /// <summary>The log level of a parse result.</summary>
    public static LogLevel GetLogLevel(ParseResult parseResult) => parseResult.GetValue<LogLevel>(LogLevelName);
}
