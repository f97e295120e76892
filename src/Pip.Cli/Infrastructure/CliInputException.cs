namespace Pip.Cli.Infrastructure;

/// <summary>
/// Bad input found by a command (a missing file, an out-of-range value, an output folder that exists): reported as
/// its message alone, with exit code <see cref="ExitCodes.BadInput"/>.
/// </summary>
internal sealed class CliInputException : Exception
{
    public CliInputException(string message, Exception? innerException = null) : base(message, innerException)
    {
    }
}
