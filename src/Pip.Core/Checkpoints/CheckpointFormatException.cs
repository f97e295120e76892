namespace Pip.Checkpoints;

/// <summary>
/// A checkpoint file (<c>config.json</c>, a safetensors file, a shard index, a model folder) is malformed,
/// unsupported or unsafe to load. The message always names the file and the problem.
/// </summary>
public sealed class CheckpointFormatException : Exception
{
    /// <summary>Creates the exception for a problem in <paramref name="filePath"/>.</summary>
    /// <param name="filePath">The offending file (or folder).</param>
    /// <param name="problem">What is wrong, in words.</param>
    /// <param name="field">The offending field or tensor, if the problem is tied to one.</param>
    /// <param name="innerException">The underlying error, if any.</param>
    public CheckpointFormatException(string filePath, string problem, string? field = null, Exception? innerException = null)
        : base(FormatMessage(filePath, problem, field), innerException)
    {
        FilePath = filePath;
        Field = field;
        Problem = problem;
    }

    /// <summary>The offending file (or folder).</summary>
    public string FilePath { get; }

    /// <summary>The offending field (config key, tensor name, shard entry), or null.</summary>
    public string? Field { get; }

    /// <summary>The problem, without the file name.</summary>
    public string Problem { get; }

    private static string FormatMessage(string filePath, string problem, string? field) =>
        field is null
            ? $"Invalid checkpoint file '{filePath}': {problem}"
            : $"Invalid checkpoint file '{filePath}', '{field}': {problem}";
}
