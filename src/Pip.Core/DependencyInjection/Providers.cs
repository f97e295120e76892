using System.Diagnostics.CodeAnalysis;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Pip;

/// <summary>Finds the registered importance metrics by name.</summary>
public interface IImportanceMetricProvider
{
    /// <summary>The names of the registered metrics, sorted.</summary>
    IReadOnlyList<string> Names { get; }

    /// <summary>Gets a metric by name (case-insensitive).</summary>
    /// <param name="name">The metric's name.</param>
    /// <exception cref="KeyNotFoundException">No metric has that name; the message lists the registered names.</exception>
    IImportanceMetric GetMetric(string name);

    /// <summary>Finds a metric by name (case-insensitive).</summary>
    /// <param name="name">The metric's name.</param>
    /// <param name="metric">The metric, when found.</param>
    bool TryGetMetric(string name, [NotNullWhen(true)] out IImportanceMetric? metric);
}

/// <summary>Builds pruning pipelines from the container's metrics, perturbers, strategies, filters and <see cref="PipOptions"/>.</summary>
public interface IPruningPipelineFactory
{
    /// <summary>Builds a pipeline.</summary>
    /// <param name="metricName">The metric's name, or null for <see cref="PipOptions.Metric"/>.</param>
    /// <exception cref="KeyNotFoundException">The metric is not registered.</exception>
    /// <exception cref="InvalidOperationException">The perturber or strategy named in the options is unknown.</exception>
    PruningPipeline Create(string? metricName = null);
}

/// <summary>The metrics of the container, by name; when two share a name, the last registered wins.</summary>
internal sealed class ImportanceMetricProvider : IImportanceMetricProvider
{
    private readonly Dictionary<string, IImportanceMetric> _metrics = new(StringComparer.OrdinalIgnoreCase);

    public ImportanceMetricProvider(IEnumerable<IImportanceMetric> metrics)
    {
        foreach (IImportanceMetric metric in metrics)
        {
            _metrics[metric.Name] = metric;
        }

        Names = [.. _metrics.Keys.Order(StringComparer.OrdinalIgnoreCase)];
    }

    public IReadOnlyList<string> Names { get; }

    public IImportanceMetric GetMetric(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return TryGetMetric(name, out IImportanceMetric? metric)
            ? metric
            : throw new KeyNotFoundException($"No importance metric named '{name}' is registered. Registered: {(Names.Count == 0 ? "none" : string.Join(", ", Names))}. Register one with AddPip().AddMetric(...).");
    }

    public bool TryGetMetric(string name, [NotNullWhen(true)] out IImportanceMetric? metric) =>
        _metrics.TryGetValue(name ?? string.Empty, out metric);
}

/// <summary>Builds pipelines from the container (see <see cref="IPruningPipelineFactory"/>).</summary>
internal sealed class PruningPipelineFactory : IPruningPipelineFactory
{
    private readonly PipOptions _options;
    private readonly IImportanceMetricProvider _metrics;
    private readonly IEnumerable<IPerturber> _perturbers;
    private readonly IEnumerable<IPruningStrategy> _strategies;
    private readonly IEnumerable<ICandidateFilter> _filters;
    private readonly ILoggerFactory? _loggerFactory;
    private readonly Microsoft.Extensions.AI.IChatClient? _chatClient;

    public PruningPipelineFactory(
        IOptions<PipOptions> options,
        IImportanceMetricProvider metrics,
        IEnumerable<IPerturber> perturbers,
        IEnumerable<IPruningStrategy> strategies,
        IEnumerable<ICandidateFilter> filters,
        ILoggerFactory? loggerFactory = null,
        Microsoft.Extensions.AI.IChatClient? chatClient = null)
    {
        // Reading Value validates the options now (throwing OptionsValidationException), not at the first run.
        _options = options.Value;
        _metrics = metrics;
        _perturbers = perturbers;
        _strategies = strategies;
        _filters = filters;
        _loggerFactory = loggerFactory;
        _chatClient = chatClient;
    }

    public PruningPipeline Create(string? metricName = null)
    {
        PipOptions o = _options;
        IImportanceMetric metric = _metrics.GetMetric(metricName ?? o.Metric);
        PipelineBuilder builder = new PipelineBuilder()
            .Configure(o.ClonePipelineOptions())
            .UseMetric(metric)
            .UseLoggerFactory(_loggerFactory);

        if (metric.UsesPerturbations)
        {
            if (_perturbers.LastOrDefault(p => Same(p.Name, o.Perturber)) is { } perturber)
            {
                builder.UsePerturber(perturber);
            }
            else if (Same(o.Perturber, PerturbationConstants.LexiconPerturberName))
            {
                builder.UseLexiconPerturber(o.Lexicon);
            }
            else if (Same(o.Perturber, PerturbationConstants.RandomCharPerturberName))
            {
                builder.UseRandomCharPerturber(o.RandomChar);
            }
            else if (Same(o.Perturber, ChatClientPerturberConstants.Name))
            {
                builder.UseChatClientPerturber(
                    _chatClient ?? throw new InvalidOperationException($"PipOptions.Perturber is '{ChatClientPerturberConstants.Name}', but no Microsoft.Extensions.AI.IChatClient is registered; register one (services.AddSingleton<IChatClient>(...) or AddChatClient) or use AddPip().UseChatClientPerturber(client)."),
                    o.ChatClient,
                    o.Lexicon);
            }
            else
            {
                string[] known = [PerturbationConstants.LexiconPerturberName, PerturbationConstants.RandomCharPerturberName, ChatClientPerturberConstants.Name, .. _perturbers.Select(p => p.Name)];
                throw new InvalidOperationException($"Unknown perturber '{o.Perturber}' (PipOptions.Perturber). Available: {string.Join(", ", known.Distinct(StringComparer.OrdinalIgnoreCase))}.");
            }
        }

        if (_strategies.LastOrDefault(s => Same(s.Name, o.Strategy)) is { } strategy)
        {
            builder.UseStrategy(strategy);
        }
        else if (Same(o.Strategy, StrategyConstants.IterativeGreedyName) || Same(o.Strategy, "iterative-greedy"))
        {
            builder.UseIterativeGreedy(o.IterativeGreedy);
        }
        else if (Same(o.Strategy, StrategyConstants.OneShotName) || Same(o.Strategy, "oneshot"))
        {
            builder.UseOneShot();
        }
        else
        {
            string[] known = [StrategyConstants.IterativeGreedyName, StrategyConstants.OneShotName, .. _strategies.Select(s => s.Name)];
            throw new InvalidOperationException($"Unknown strategy '{o.Strategy}' (PipOptions.Strategy). Available: {string.Join(", ", known.Distinct(StringComparer.OrdinalIgnoreCase))}.");
        }

        if (o.Guard.IsActive)
        {
            builder.AddLayerGuard(o.Guard);
        }

        if (o.UseConsistencyDiscriminator && metric.UsesPerturbations)
        {
            builder.AddConsistencyDiscriminator(o.Discriminator);
        }

        foreach (ICandidateFilter filter in _filters)
        {
            builder.AddFilter(filter);
        }

        return builder.Build();
    }

    private static bool Same(string? a, string? b) => string.Equals(a?.Trim(), b?.Trim(), StringComparison.OrdinalIgnoreCase);
}
