using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Pip.Internal;

namespace Pip;

/// <summary>Makes the perturber of a run from the run's context.</summary>
/// <param name="context">The run's samples and corpus file.</param>
/// <param name="cancellationToken">Cancels the work (loading a lexicon, say).</param>
public delegate IPerturber PerturberFactory(PerturberContext context, CancellationToken cancellationToken);

/// <summary>Builds a <see cref="PruningPipeline"/>: a metric, a strategy, filters, a perturber and options.</summary>
/// <remarks>
/// <para>Components are given as instances or, through the extension methods (<c>UseLexiconPerturber</c>,
/// <c>UseIterativeGreedy</c>, <c>AddConsistencyDiscriminator</c>, ...), as options that <see cref="Build"/> validates
/// all together, throwing one <see cref="Microsoft.Extensions.Options.OptionsValidationException"/> that lists every
/// problem. Defaults: the iterative greedy strategy; the lexicon perturber when the metric uses perturbations.</para>
/// <para>Not thread-safe; <see cref="Build"/> may be called once.</para>
/// </remarks>
public sealed class PipelineBuilder
{
    private readonly List<(string Path, object Options)> _componentOptions = [];
    private readonly List<(string Name, Func<ICandidateFilter> Create)> _filters = [];
    private PipelineOptions _options = new();
    private (string Name, Func<IImportanceMetric> Create)? _metric;
    private (string Name, Func<IPruningStrategy> Create)? _strategy;
    private (string Name, Func<PerturberFactory> Prepare)? _perturber;
    private ILoggerFactory? _loggerFactory;
    private int _consistencyDiscriminators;
    private bool _built;

    /// <summary>Sets the run options (the builder keeps this instance until <see cref="Build"/>, which copies it).</summary>
    /// <param name="options">The options.</param>
    public PipelineBuilder Configure(PipelineOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        return this;
    }

    /// <summary>Changes the run options.</summary>
    /// <param name="configure">Changes them.</param>
    public PipelineBuilder Configure(Action<PipelineOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        configure(_options);
        return this;
    }

    /// <summary>Sets the importance metric (replacing any earlier one).</summary>
    /// <param name="metric">The metric.</param>
    public PipelineBuilder UseMetric(IImportanceMetric metric)
    {
        ArgumentNullException.ThrowIfNull(metric);
        _componentOptions.RemoveAll(o => o.Path == "metric");
        _metric = (metric.Name, () => metric);
        return this;
    }

    /// <summary>Sets the strategy (replacing any earlier one).</summary>
    /// <param name="strategy">The strategy.</param>
    public PipelineBuilder UseStrategy(IPruningStrategy strategy)
    {
        ArgumentNullException.ThrowIfNull(strategy);
        _componentOptions.RemoveAll(o => o.Path == "strategy");
        _strategy = (strategy.Name, () => strategy);
        return this;
    }

    /// <summary>Sets the perturber (replacing any earlier one); used only when the metric uses perturbations.</summary>
    /// <param name="perturber">The perturber.</param>
    public PipelineBuilder UsePerturber(IPerturber perturber)
    {
        ArgumentNullException.ThrowIfNull(perturber);
        _componentOptions.RemoveAll(o => o.Path == "perturber");
        _perturber = (perturber.Name, () => (_, _) => perturber);
        return this;
    }

    /// <summary>Sets a perturber made when each run starts, from the run's samples (to build a lexicon from them, say).</summary>
    /// <param name="name">The perturber's name, for the report.</param>
    /// <param name="factory">Makes the perturber.</param>
    public PipelineBuilder UsePerturber(string name, PerturberFactory factory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(factory);
        _componentOptions.RemoveAll(o => o.Path == "perturber");
        _perturber = (name, () => factory);
        return this;
    }

    /// <summary>Adds a candidate filter; filters run in the order added.</summary>
    /// <param name="filter">The filter.</param>
    public PipelineBuilder AddFilter(ICandidateFilter filter)
    {
        ArgumentNullException.ThrowIfNull(filter);
        _filters.Add((filter.Name, () => filter));
        return this;
    }

    /// <summary>Sets the logger factory (default: no logging).</summary>
    /// <param name="loggerFactory">The logger factory, or null.</param>
    public PipelineBuilder UseLoggerFactory(ILoggerFactory? loggerFactory)
    {
        _loggerFactory = loggerFactory;
        return this;
    }

    /// <summary>The logger factory set with <see cref="UseLoggerFactory"/>, or null.</summary>
    internal ILoggerFactory? LoggerFactory => _loggerFactory;

    internal PipelineBuilder UseMetric(string name, object options, Func<IImportanceMetric> create)
    {
        SetOptions("metric", options);
        _metric = (name, create);
        return this;
    }

    internal PipelineBuilder UseStrategy(string name, object options, Func<IPruningStrategy> create)
    {
        SetOptions("strategy", options);
        _strategy = (name, create);
        return this;
    }

    internal PipelineBuilder UsePerturber(string name, object options, Func<PerturberFactory> prepare)
    {
        SetOptions("perturber", options);
        _perturber = (name, prepare);
        return this;
    }

    internal PipelineBuilder AddFilter(string name, object options, Func<ICandidateFilter> create, bool isConsistencyDiscriminator)
    {
        _componentOptions.Add(($"filter[{_filters.Count}]:{name}", options));
        _filters.Add((name, create));
        _consistencyDiscriminators += isConsistencyDiscriminator ? 1 : 0;
        return this;
    }

    /// <summary>Validates every option and builds the pipeline.</summary>
    /// <exception cref="Microsoft.Extensions.Options.OptionsValidationException">Some options are invalid; the exception lists every problem.</exception>
    /// <exception cref="InvalidOperationException">The builder was already built.</exception>
    public PruningPipeline Build()
    {
        if (_built)
        {
            throw new InvalidOperationException("This PipelineBuilder has already built its pipeline; use a new builder for another.");
        }

        var errors = new List<string>();
        OptionsValidation.AddAllErrors(_options, nameof(PipelineOptions), errors);
        foreach ((string path, object options) in _componentOptions)
        {
            OptionsValidation.AddAllErrors(options, $"{path}:{options.GetType().Name}", errors);
        }

        if (_metric is null)
        {
            errors.Add("No importance metric: call UseMetric (or a Use...Metric extension).");
        }

        if (_consistencyDiscriminators > 0 && _options.PerturbationSets < 2)
        {
            errors.Add($"{nameof(PipelineOptions)}.{nameof(PipelineOptions.PerturbationSets)}: the consistency discriminator compares scores across perturbation sets and needs at least 2; got {_options.PerturbationSets}.");
        }

        OptionsValidation.ThrowIfAny(errors, typeof(PipelineOptions), nameof(PipelineBuilder));
        _built = true;

        IImportanceMetric metric = _metric!.Value.Create();
        IPruningStrategy strategy = _strategy?.Create() ?? new IterativeGreedyStrategy(new IterativeGreedyStrategyOptions());
        List<ICandidateFilter> filters = [.. _filters.Select(f => f.Create())];
        (string Name, PerturberFactory Factory)? perturber = null;
        if (metric.UsesPerturbations)
        {
            if (_perturber is { } p)
            {
                perturber = (p.Name, p.Prepare());
            }
            else
            {
                var lexiconOptions = new LexiconPerturberOptions();
                perturber = (PerturbationConstants.LexiconPerturberName,
                    (context, ct) => new LexiconPerturber(lexiconOptions, LexiconPerturber.ResolveLexicon(lexiconOptions, context, ct)));
                _componentOptions.Add(("perturber", lexiconOptions));
            }
        }

        var flattened = new SortedDictionary<string, string>(StringComparer.Ordinal);
        OptionsFlattener.Flatten(_options.Calibration, "calibration", flattened);
        flattened["pipeline.RecordTokenIds"] = _options.RecordTokenIds ? "true" : "false";
        foreach ((string path, object options) in _componentOptions)
        {
            if (path == "perturber" && !metric.UsesPerturbations)
            {
                continue;
            }

            OptionsFlattener.Flatten(options, path, flattened);
        }

        var settings = new PruningSettings
        {
            Metric = metric.Name,
            Perturber = perturber?.Name,
            Strategy = strategy.Name,
            Filters = [.. filters.Select(f => f.Name)],
            Target = _options.Target,
            Seed = _options.Seed,
            PerturbationSets = metric.UsesPerturbations ? _options.PerturbationSets : 0,
            Norm = Norms.Get(_options.Norm).Name,
            Options = new Dictionary<string, string>(flattened, StringComparer.Ordinal),
        };

        ILogger logger = _loggerFactory?.CreateLogger<PruningPipeline>() ?? NullLogger<PruningPipeline>.Instance;
        return new PruningPipeline(_options.ClonePipelineOptions(), settings, metric, strategy, filters, perturber?.Factory, logger);
    }

    private void SetOptions(string path, object options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _componentOptions.RemoveAll(o => o.Path == path);
        _componentOptions.Add((path, options));
    }
}
