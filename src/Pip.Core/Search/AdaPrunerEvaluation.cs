using System.Text.Json;
using System.Text.Json.Serialization;

namespace Pip.Search;

/// <summary>The outcome of pruning a fresh copy of the model with one configuration and measuring it.</summary>
public sealed record AdaPrunerEvaluation
{
    /// <summary>The objective (lower is better): the validation perplexity of the pruned (and, with recovery, recovered) model.</summary>
    [JsonNumberHandling(JsonNumberHandling.AllowNamedFloatingPointLiterals)]
    public required double Objective { get; init; }

    /// <summary>The validation perplexity before recovery, when a recovery ran; else null.</summary>
    [JsonNumberHandling(JsonNumberHandling.AllowNamedFloatingPointLiterals)]
    public double? ObjectiveBeforeRecovery { get; init; }

    /// <summary>Parameters of the model before pruning.</summary>
    public required long ParametersBefore { get; init; }

    /// <summary>Parameters of the pruned model.</summary>
    public required long ParametersAfter { get; init; }

    /// <summary>The fraction of the parameters removed.</summary>
    public double RemovedParameterRatio => ParametersBefore == 0 ? 0 : (double)(ParametersBefore - ParametersAfter) / ParametersBefore;

    /// <summary>Seconds spent drawing the calibration samples, scoring and pruning.</summary>
    public double PruningSeconds { get; init; }

    /// <summary>Seconds spent in recovery (0 without).</summary>
    public double RecoverySeconds { get; init; }

    /// <summary>Seconds spent measuring the validation perplexity.</summary>
    public double EvaluationSeconds { get; init; }

    /// <summary>Seconds of the whole evaluation (copy, pruning, recovery, measurement).</summary>
    public double Seconds { get; init; }
}

/// <summary>
/// The objective of an AdaPruner search: prunes a fresh copy of the model with a configuration and measures it. A
/// backend implements it (Pip.Torch's <c>TorchAdaPrunerObjective</c>); tests and replays can use a table.
/// </summary>
public interface IAdaPrunerObjective
{
    /// <summary>Evaluates one configuration; the model the objective was given is left unchanged.</summary>
    /// <param name="configuration">The configuration.</param>
    /// <param name="cancellationToken">Cancels the evaluation.</param>
    /// <returns>The evaluation.</returns>
    ValueTask<AdaPrunerEvaluation> EvaluateAsync(AdaPrunerConfiguration configuration, CancellationToken cancellationToken = default);
}

/// <summary>One entry of an <see cref="AdaPrunerCache"/>.</summary>
/// <param name="Key">The configuration's <see cref="AdaPrunerConfiguration.Key"/>.</param>
/// <param name="Configuration">The configuration first evaluated under that key.</param>
/// <param name="Evaluation">Its evaluation.</param>
public sealed record AdaPrunerCacheEntry(string Key, AdaPrunerConfiguration Configuration, AdaPrunerEvaluation Evaluation);

/// <summary>
/// Evaluations by configuration key (<see cref="AdaPrunerConfiguration.Key"/>): a configuration evaluated once is
/// looked up instead of pruned again (TPE proposes duplicates in a discrete space, and equivalent configurations
/// share a key). Only successful evaluations are kept. Saved and read as JSON, so a table of a whole grid can be
/// replayed by searchers without a model (the objective is deterministic).
/// </summary>
/// <remarks>Thread-safe.</remarks>
public sealed class AdaPrunerCache
{
    /// <summary>The format name written in the file.</summary>
    public const string FormatName = "pip-adapruner-cache/1";

    private readonly object _lock = new();
    private readonly Dictionary<string, AdaPrunerCacheEntry> _entries = new(StringComparer.Ordinal);
    private readonly List<string> _order = [];

    /// <summary>Number of entries.</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _entries.Count;
            }
        }
    }

    /// <summary>The entries, in the order they were added.</summary>
    public IReadOnlyList<AdaPrunerCacheEntry> Entries
    {
        get
        {
            lock (_lock)
            {
                return [.. _order.Select(k => _entries[k])];
            }
        }
    }

    /// <summary>Looks up a configuration by its key.</summary>
    /// <param name="configuration">The configuration.</param>
    /// <param name="evaluation">Its evaluation, when found.</param>
    public bool TryGet(AdaPrunerConfiguration configuration, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out AdaPrunerEvaluation? evaluation)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        lock (_lock)
        {
            evaluation = _entries.TryGetValue(configuration.Key, out AdaPrunerCacheEntry? entry) ? entry.Evaluation : null;
            return evaluation is not null;
        }
    }

    /// <summary>Adds or replaces the evaluation of a configuration's key.</summary>
    /// <param name="configuration">The configuration.</param>
    /// <param name="evaluation">Its evaluation.</param>
    public void Set(AdaPrunerConfiguration configuration, AdaPrunerEvaluation evaluation)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        ArgumentNullException.ThrowIfNull(evaluation);
        string key = configuration.Key;
        lock (_lock)
        {
            if (!_entries.ContainsKey(key))
            {
                _order.Add(key);
            }

            _entries[key] = new AdaPrunerCacheEntry(key, configuration, evaluation);
        }
    }

    /// <summary>
    /// The cached evaluation of the configuration's key, or else the objective's (then cached). Concurrent calls for
    /// one key may both evaluate; the last result is kept.
    /// </summary>
    /// <param name="configuration">The configuration.</param>
    /// <param name="objective">Evaluates it when it is not cached.</param>
    /// <param name="cancellationToken">Cancels the evaluation.</param>
    /// <returns>The evaluation, and whether it came from the cache.</returns>
    public async ValueTask<(AdaPrunerEvaluation Evaluation, bool Cached)> GetOrEvaluateAsync(
        AdaPrunerConfiguration configuration, IAdaPrunerObjective objective, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        ArgumentNullException.ThrowIfNull(objective);
        if (TryGet(configuration, out AdaPrunerEvaluation? cached))
        {
            return (cached, true);
        }

        AdaPrunerEvaluation evaluation = await objective.EvaluateAsync(configuration, cancellationToken).ConfigureAwait(false);
        if (double.IsFinite(evaluation.Objective))
        {
            Set(configuration, evaluation);
        }

        return (evaluation, false);
    }

    /// <summary>An objective that only looks configurations up (a replay of a table); a missing key throws <see cref="KeyNotFoundException"/>.</summary>
    public IAdaPrunerObjective AsObjective() => new TableObjective(this);

    /// <summary>Writes the cache as JSON, atomically (temporary file, then move).</summary>
    /// <param name="path">The file; its folder is created if needed.</param>
    /// <param name="cancellationToken">Cancels the write (the file is then left as it was).</param>
    public Task SaveAsync(string path, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        var file = new CacheFile { Format = FormatName, Entries = Entries };
        return AdaPrunerJson.WriteAtomicallyAsync(file, path, cancellationToken);
    }

    /// <summary>Reads a cache written by <see cref="SaveAsync"/>.</summary>
    /// <param name="path">The file.</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not an AdaPruner cache (the message names it).</exception>
    public static AdaPrunerCache Load(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"AdaPruner cache '{path}' does not exist.", path);
        }

        CacheFile? file;
        try
        {
            file = JsonSerializer.Deserialize<CacheFile>(File.ReadAllText(path), AdaPrunerJson.Options);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"AdaPruner cache '{path}' is not valid JSON of the expected shape: {e.Message}", e);
        }

        if (file is null || file.Format != FormatName || file.Entries is null)
        {
            throw new InvalidDataException($"'{path}' is not an AdaPruner cache (format '{file?.Format}', expected '{FormatName}').");
        }

        var cache = new AdaPrunerCache();
        foreach (AdaPrunerCacheEntry entry in file.Entries)
        {
            if (entry?.Configuration is null || entry.Evaluation is null)
            {
                throw new InvalidDataException($"AdaPruner cache '{path}' has an entry without a configuration or an evaluation.");
            }

            cache.Set(entry.Configuration, entry.Evaluation);
        }

        return cache;
    }

    private sealed class CacheFile
    {
        public string? Format { get; init; }

        public IReadOnlyList<AdaPrunerCacheEntry>? Entries { get; init; }
    }

    private sealed class TableObjective(AdaPrunerCache cache) : IAdaPrunerObjective
    {
        public ValueTask<AdaPrunerEvaluation> EvaluateAsync(AdaPrunerConfiguration configuration, CancellationToken cancellationToken = default) =>
            cache.TryGet(configuration, out AdaPrunerEvaluation? evaluation)
                ? ValueTask.FromResult(evaluation)
                : throw new KeyNotFoundException($"The table has no evaluation of '{configuration.Key}'.");
    }
}

/// <summary>The JSON settings of AdaPruner's files (those of <see cref="PruningReportJson"/>: snake_case, enums as strings, indented) and atomic writes.</summary>
internal static class AdaPrunerJson
{
    public static JsonSerializerOptions Options => PruningReportJson.SerializerOptions;

    public static async Task WriteAtomicallyAsync<T>(T value, string path, CancellationToken cancellationToken)
    {
        string full = Path.GetFullPath(path);
        string folder = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(folder);
        string temp = Path.Combine(folder, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            await using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 65536, useAsync: true))
            {
                await JsonSerializer.SerializeAsync(stream, value, Options, cancellationToken).ConfigureAwait(false);
            }

            File.Move(temp, full, overwrite: true);
        }
        finally
        {
            File.Delete(temp);
        }
    }
}
