// Shared by the samples (linked into each project with <Compile Include="../Shared/SampleCli.cs" />): minimal
// "--name value" parsing and the repository/corpus look-up. Samples are not packages, so a shared source file is enough.
using System.Globalization;

/// <summary>Minimal <c>--name value</c> parsing: a name without a value (or followed by another <c>--name</c>) is a flag.</summary>
internal sealed class Cli
{
    private readonly Dictionary<string, string?> _values = new(StringComparer.Ordinal);

    public static Cli Parse(string[] args)
    {
        var cli = new Cli();
        for (int i = 0; i < args.Length; i++)
        {
            if (!args[i].StartsWith("--", StringComparison.Ordinal)) throw new ArgumentException($"Unexpected argument '{args[i]}'.");
            var key = args[i][2..];
            string? value = i + 1 < args.Length && !args[i + 1].StartsWith("--", StringComparison.Ordinal) ? args[++i] : null;
            cli._values[key] = value;
        }
        return cli;
    }

    public string? Get(string key) => _values.GetValueOrDefault(key);

    public bool Has(string key) => _values.ContainsKey(key);

    public int Int(string key, int fallback) => Get(key) is { } v ? ParseInt(v) : fallback;

    public long Long(string key, long fallback) => Get(key) is { } v ? long.Parse(v, CultureInfo.InvariantCulture) : fallback;

    public double Double(string key, double fallback) => Get(key) is { } v ? double.Parse(v, CultureInfo.InvariantCulture) : fallback;

    public static int ParseInt(string v) => int.Parse(v, CultureInfo.InvariantCulture);

    /// <summary>A comma-separated list, entries trimmed, empty entries dropped.</summary>
    public static List<string> List(string v) => [.. v.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];

    /// <summary>
    /// <paramref name="relative"/> (e.g. shared/data/corpus) under <paramref name="start"/> or a folder above it
    /// (worktrees live deeper than the repository).
    /// </summary>
    public static string FindUp(string start, string relative)
    {
        for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, relative);
            if (Directory.Exists(candidate)) return candidate;
        }
        throw new DirectoryNotFoundException($"No '{relative}' folder above '{start}'; pass --corpus.");
    }

    /// <summary>The folder holding Pip.sln above the running sample, or the current folder when there is none.</summary>
    public static string FindRepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Pip.sln"))) dir = dir.Parent;
        return dir?.FullName ?? Directory.GetCurrentDirectory();
    }
}
