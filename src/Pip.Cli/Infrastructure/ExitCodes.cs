namespace Pip.Cli;

/// <summary>The exit codes of <c>pip-prune</c>.</summary>
public static class ExitCodes
{
    /// <summary>The command succeeded.</summary>
    public const int Success = 0;

    /// <summary>The command failed while running (an unexpected error, an I/O failure, a native error).</summary>
    public const int RuntimeFailure = 1;

    /// <summary>
    /// The input is bad: an unknown option or malformed value, a missing file or folder, a malformed checkpoint or
    /// tokenizer, an output folder that exists without <c>--overwrite</c>.
    /// </summary>
    public const int BadInput = 2;

    /// <summary>The command was cancelled (Ctrl-C, SIGTERM), as shells report SIGINT (128 + 2).</summary>
    public const int Cancelled = 130;
}
