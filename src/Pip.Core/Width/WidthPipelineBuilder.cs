using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Pip.Internal;

namespace Pip;

/// <summary>
/// Builds a <see cref="WidthPruningPipeline"/>: the sibling of <see cref="PipelineBuilder"/> for width pruning. It
/// takes the same <see cref="PipelineOptions"/> (target, seed, calibration, ...) plus <see cref="WidthPruningOptions"/>
/// and a width metric, validates everything together in <see cref="Build"/> (one
/// <see cref="Microsoft.Extensions.Options.OptionsValidationException"/> listing every problem), and the pipeline
/// writes the same <see cref="PruningReport"/> as depth pruning.
/// </summary>
/// <remarks>Not thread-safe; <see cref="Build"/> may be called once.</remarks>
public sealed class WidthPipelineBuilder
{
    private PipelineOptions _options = new();
    private WidthPruningOptions _width = new();
    private (string Name, object? Options, Func<IWidthImportanceMetric> Create)? _metric;
    private ILoggerFactory? _loggerFactory;
    private bool _built;

    /// <summary>Sets the run options (target, seed, norm, calibration); the pipeline keeps a copy made at build.</summary>
    /// <param name="options">The options.</param>
    public WidthPipelineBuilder Configure(PipelineOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        return this;
    }

    /// <summary>Changes the run options.</summary>
    /// <param name="configure">Changes them.</param>
    public WidthPipelineBuilder Configure(Action<PipelineOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        configure(_options);
        return this;
    }

    /// <summary>Sets the width options (units, allocation, layer range, bias compensation).</summary>
    /// <param name="options">The options.</param>
    public WidthPipelineBuilder ConfigureWidth(WidthPruningOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _width = options;
        return this;
    }

    /// <summary>Changes the width options.</summary>
    /// <param name="configure">Changes them.</param>
    public WidthPipelineBuilder ConfigureWidth(Action<WidthPruningOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        configure(_width);
        return this;
    }

    /// <summary>Sets the width importance metric (replacing any earlier one): a built-in one or your own.</summary>
    /// <param name="metric">The metric.</param>
    public WidthPipelineBuilder UseMetric(IWidthImportanceMetric metric)
    {
        ArgumentNullException.ThrowIfNull(metric);
        _metric = (metric.Name, null, () => metric);
        return this;
    }

    /// <summary>Uses the seeded random baseline (<c>random</c>).</summary>
    public WidthPipelineBuilder UseRandomMetric() => UseMetric(new RandomWidthMetric());

    /// <summary>Sets a metric made at build from options that <see cref="Build"/> validates (for backends' extension methods).</summary>
    /// <param name="name">The metric's name.</param>
    /// <param name="options">Its options (validated, and recorded in the report under <c>metric.</c>).</param>
    /// <param name="create">Makes the metric.</param>
    internal WidthPipelineBuilder UseMetric(string name, object options, Func<IWidthImportanceMetric> create)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(create);
        _metric = (name, options, create);
        return this;
    }

    /// <summary>Sets the logger factory (default: no logging).</summary>
    /// <param name="loggerFactory">The logger factory, or null.</param>
    public WidthPipelineBuilder UseLoggerFactory(ILoggerFactory? loggerFactory)
    {
        _loggerFactory = loggerFactory;
        return this;
    }

    /// <summary>Validates every option and builds the pipeline.</summary>
    /// <exception cref="Microsoft.Extensions.Options.OptionsValidationException">Some options are invalid; the exception lists every problem.</exception>
    /// <exception cref="InvalidOperationException">The builder was already built.</exception>
    public WidthPruningPipeline Build()
    {
        if (_built)
        {
            throw new InvalidOperationException("This WidthPipelineBuilder has already built its pipeline; use a new builder for another.");
        }

        var errors = new List<string>();
        OptionsValidation.AddAllErrors(_options, nameof(PipelineOptions), errors);
        OptionsValidation.AddAllErrors(_width, nameof(WidthPruningOptions), errors);
        if (_options.Target is { Layers: not null })
        {
            errors.Add($"{nameof(PipelineOptions)}.{nameof(PipelineOptions.Target)}: width pruning needs a parameter ratio, not a layer count.");
        }

        if (_metric is { Options: { } metricOptions })
        {
            OptionsValidation.AddAllErrors(metricOptions, $"metric:{metricOptions.GetType().Name}", errors);
        }
        else if (_metric is null)
        {
            errors.Add("No width importance metric: call UseMetric (or a Use...WidthMetric extension).");
        }

        OptionsValidation.ThrowIfAny(errors, typeof(WidthPruningOptions), nameof(WidthPipelineBuilder));
        _built = true;

        IWidthImportanceMetric metric = _metric!.Value.Create();
        WidthPruningOptions width = _width.Clone();
        var flattened = new SortedDictionary<string, string>(StringComparer.Ordinal);
        OptionsFlattener.Flatten(_options.Calibration, "calibration", flattened);
        flattened["pipeline.RecordTokenIds"] = _options.RecordTokenIds ? "true" : "false";
        OptionsFlattener.Flatten(width, "width", flattened);
        OptionsFlattener.Flatten(_metric.Value.Options, "metric", flattened);
        var settings = new PruningSettings
        {
            Mode = PruningMode.Width,
            Metric = metric.Name,
            Perturber = null,
            Strategy = width.Allocation == WidthAllocation.Adaptive ? WidthConstants.AdaptiveStrategyName : WidthConstants.UniformStrategyName,
            Filters = [],
            Target = _options.Target,
            Seed = _options.Seed,
            PerturbationSets = 0,
            Norm = Norms.Get(_options.Norm).Name,
            Options = new Dictionary<string, string>(flattened, StringComparer.Ordinal),
        };

        ILogger logger = _loggerFactory?.CreateLogger<WidthPruningPipeline>() ?? NullLogger<WidthPruningPipeline>.Instance;
        return new WidthPruningPipeline(_options.ClonePipelineOptions(), width, settings, metric, flattened.GetValueOrDefault("metric.GroupReduction"), logger);
    }
}
