using System.ComponentModel.DataAnnotations;
using System.Globalization;
using System.Text;
using System.Text.Json.Serialization;
using Pip.Internal;

namespace Pip.Search;

/// <summary>What an AdaPruner search prunes.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<AdaPrunerMode>))]
public enum AdaPrunerMode
{
    /// <summary>Attention key/value groups and MLP channels inside the layers (LLM-Pruner's setting, AdaPruner's).</summary>
    Width,

    /// <summary>Whole decoder layers (PIP and the layer metrics).</summary>
    Depth,
}

/// <summary>Names of an AdaPruner solution space's parameters, their default choices, and the metrics' traits the cache relies on.</summary>
public static class AdaPrunerConstants
{
    /// <summary>Parameter: the calibration corpus, by name (<see cref="AdaPrunerCorpus.Name"/>).</summary>
    public const string CorpusParameter = "corpus";

    /// <summary>Parameter: the number of calibration samples.</summary>
    public const string SamplesParameter = "samples";

    /// <summary>Parameter: the length of each calibration sample in tokens.</summary>
    public const string SequenceLengthParameter = "seq_len";

    /// <summary>Parameter: the seed of the draw of the calibration samples (which passages of the corpus).</summary>
    public const string CalibrationSeedParameter = "calibration_seed";

    /// <summary>Parameter: the importance metric.</summary>
    public const string MetricParameter = "metric";

    /// <summary>Parameter (width): how a unit's per-projection scores combine: <c>sum</c>, <c>mean</c>, <c>max</c>, <c>product</c>.</summary>
    public const string GroupReductionParameter = "aggregation";

    /// <summary>Parameter (width): how the removal is spread over the layers: <c>uniform</c> or <c>adaptive</c>.</summary>
    public const string AllocationParameter = "allocation";

    /// <summary>Parameter (depth, <c>pip</c>): the perturber that makes the twins.</summary>
    public const string PerturberParameter = "perturber";

    /// <summary>Parameter (depth, gradient-norm metrics): the vector norm.</summary>
    public const string NormParameter = "norm";

    /// <summary>Default numbers of calibration samples: 4, 8, 16, 32.</summary>
    public static IReadOnlyList<int> DefaultSampleCounts { get; } = [4, 8, 16, 32];

    /// <summary>Default calibration sequence lengths: 64, 128, 256 tokens.</summary>
    public static IReadOnlyList<int> DefaultSequenceLengths { get; } = [64, 128, 256];

    /// <summary>Default width metrics: first-order, second-order, mixed and vector-wise Taylor, Wanda-sp, FLAP and magnitude.</summary>
    public static IReadOnlyList<string> DefaultWidthMetrics { get; } = ["taylor", "taylor-second", "taylor-mix", "taylor-vector", "wanda-sp", "flap", "magnitude"];

    /// <summary>Default depth metrics: PIP's PertImport, gradient norm, Taylor+, Block Influence and magnitude.</summary>
    public static IReadOnlyList<string> DefaultDepthMetrics { get; } = [MetricConstants.Pip, "gradient", "taylor", "block-influence", "magnitude"];

    /// <summary>Default group reductions (width): all four.</summary>
    public static IReadOnlyList<WidthGroupReduction> DefaultGroupReductions { get; } =
        [WidthGroupReduction.Sum, WidthGroupReduction.Mean, WidthGroupReduction.Max, WidthGroupReduction.Product];

    /// <summary>Default perturbers (depth, <c>pip</c>): lexicon and random-char.</summary>
    public static IReadOnlyList<string> DefaultPerturbers { get; } = [PerturbationConstants.LexiconPerturberName, PerturbationConstants.RandomCharPerturberName];

    /// <summary>Default norms (depth): L1, L2 and L∞.</summary>
    public static IReadOnlyList<string> DefaultNorms { get; } = ["L1", "L2", "Linf"];

    /// <summary>
    /// Metrics that read no calibration data (their result does not depend on the corpus, the number of samples, the
    /// sequence length or the draw): <c>magnitude</c> and <c>random</c>.
    /// </summary>
    public static IReadOnlyList<string> DataFreeMetrics { get; } = ["magnitude", WidthConstants.RandomMetric];

    /// <summary>Width metrics that ignore the group reduction: <c>flap</c> (one part per unit) and <c>random</c>.</summary>
    public static IReadOnlyList<string> ReductionFreeWidthMetrics { get; } = ["flap", WidthConstants.RandomMetric];

    /// <summary>Depth metrics that use the norm: <c>pip</c> and <c>gradient</c>.</summary>
    public static IReadOnlyList<string> NormDepthMetrics { get; } = [MetricConstants.Pip, "gradient"];

    /// <summary>Depth metrics that use a perturber: <c>pip</c>.</summary>
    public static IReadOnlyList<string> PerturbationDepthMetrics { get; } = [MetricConstants.Pip];

    /// <summary>LLM-Pruner's default metric: first-order Taylor (<c>taylor</c>, <c>param_first</c>).</summary>
    public const string LlmPrunerMetric = "taylor";

    /// <summary>LLM-Pruner's default number of calibration samples: 10 (<c>--num_examples</c>).</summary>
    public const int LlmPrunerSampleCount = 10;

    /// <summary>LLM-Pruner's default calibration sequence length: 64 tokens (<c>get_examples(..., seq_len=64)</c>).</summary>
    public const int LlmPrunerSequenceLength = 64;

    /// <summary>The name of a group reduction as a parameter value: <c>sum</c>, <c>mean</c>, <c>max</c>, <c>product</c>.</summary>
    /// <param name="reduction">The reduction.</param>
    public static string Name(WidthGroupReduction reduction) => reduction.ToString().ToLowerInvariant();

    /// <summary>The name of an allocation as a parameter value: <c>uniform</c>, <c>adaptive</c>.</summary>
    /// <param name="allocation">The allocation.</param>
    public static string Name(WidthAllocation allocation) => allocation.ToString().ToLowerInvariant();
}

/// <summary>A calibration corpus the search may choose: a UTF-8 text file and the short name trials record.</summary>
/// <param name="Name">The name (unique in a space; a parameter value of <see cref="AdaPrunerConstants.CorpusParameter"/>).</param>
/// <param name="Path">The text file: one passage per line (blank lines are skipped).</param>
public sealed record AdaPrunerCorpus(string Name, string Path)
{
    /// <summary>A corpus named after its file (the file name without extension).</summary>
    /// <param name="path">The text file.</param>
    public static AdaPrunerCorpus FromFile(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        return new AdaPrunerCorpus(System.IO.Path.GetFileNameWithoutExtension(path), System.IO.Path.GetFullPath(path));
    }
}

/// <summary>
/// The choices of an AdaPruner solution space: a calibration subspace (corpus × number of samples × sequence length ×
/// draw) and a metric subspace (width: metric × group reduction × allocation; depth: metric × perturber × norm). Every
/// list is a categorical parameter; a list of one value fixes it.
/// </summary>
/// <remarks>Mutable until given to <see cref="AdaPrunerSpace"/>, which keeps a copy.</remarks>
public sealed class AdaPrunerSpaceOptions : IPipOptionsCheck
{
    /// <summary>What to prune. Default <see cref="AdaPrunerMode.Width"/>.</summary>
    public AdaPrunerMode Mode { get; set; } = AdaPrunerMode.Width;

    /// <summary>The calibration corpora (at least one). They must not hold the validation text (see <see cref="AdaPrunerCalibration.CheckDisjoint"/>).</summary>
    [Required]
    public IList<AdaPrunerCorpus> Corpora { get; set; } = [];

    /// <summary>Numbers of calibration samples. Default <see cref="AdaPrunerConstants.DefaultSampleCounts"/>.</summary>
    [Required]
    public IList<int> SampleCounts { get; set; } = [.. AdaPrunerConstants.DefaultSampleCounts];

    /// <summary>Calibration sequence lengths in tokens. Default <see cref="AdaPrunerConstants.DefaultSequenceLengths"/>.</summary>
    [Required]
    public IList<int> SequenceLengths { get; set; } = [.. AdaPrunerConstants.DefaultSequenceLengths];

    /// <summary>Seeds of the draw of the samples (more than one lets the search pick the passages too). Default: <see cref="CalibrationConstants.DefaultSeed"/> only.</summary>
    [Required]
    public IList<int> CalibrationSeeds { get; set; } = [CalibrationConstants.DefaultSeed];

    /// <summary>The metrics, or null for the mode's defaults (<see cref="AdaPrunerConstants.DefaultWidthMetrics"/>, <see cref="AdaPrunerConstants.DefaultDepthMetrics"/>). The backend checks the names.</summary>
    public IList<string>? Metrics { get; set; }

    /// <summary>Width: the group reductions. Default <see cref="AdaPrunerConstants.DefaultGroupReductions"/>.</summary>
    [Required]
    public IList<WidthGroupReduction> GroupReductions { get; set; } = [.. AdaPrunerConstants.DefaultGroupReductions];

    /// <summary>Width: the allocations. Default: <see cref="WidthAllocation.Uniform"/> only (LLM-Pruner's).</summary>
    [Required]
    public IList<WidthAllocation> Allocations { get; set; } = [WidthAllocation.Uniform];

    /// <summary>Depth: the perturbers of <c>pip</c>. Default <see cref="AdaPrunerConstants.DefaultPerturbers"/>.</summary>
    [Required]
    public IList<string> Perturbers { get; set; } = [.. AdaPrunerConstants.DefaultPerturbers];

    /// <summary>Depth: the norms of the gradient-norm metrics. Default <see cref="AdaPrunerConstants.DefaultNorms"/>.</summary>
    [Required]
    public IList<string> Norms { get; set; } = [.. AdaPrunerConstants.DefaultNorms];

    void IPipOptionsCheck.AddErrors(List<string> errors, string path)
    {
        if (!Enum.IsDefined(Mode))
        {
            errors.Add($"{path}.{nameof(Mode)}: {(int)Mode} is not width or depth.");
        }

        if (Corpora is not null)
        {
            if (Corpora.Count == 0)
            {
                errors.Add($"{path}.{nameof(Corpora)}: give at least one calibration corpus.");
            }

            var names = new HashSet<string>(StringComparer.Ordinal);
            foreach (AdaPrunerCorpus? corpus in Corpora)
            {
                if (corpus is null || string.IsNullOrWhiteSpace(corpus.Name) || string.IsNullOrWhiteSpace(corpus.Path))
                {
                    errors.Add($"{path}.{nameof(Corpora)}: every corpus needs a name and a file.");
                }
                else if (!names.Add(corpus.Name))
                {
                    errors.Add($"{path}.{nameof(Corpora)}: two corpora are named '{corpus.Name}'; give them distinct names.");
                }
            }
        }

        CheckList(SampleCounts, nameof(SampleCounts), v => v >= 1, "at least 1");
        CheckList(SequenceLengths, nameof(SequenceLengths), v => v >= 2, "at least 2");
        CheckList(CalibrationSeeds, nameof(CalibrationSeeds), _ => true, "");
        if (Metrics is not null)
        {
            CheckList(Metrics, nameof(Metrics), m => !string.IsNullOrWhiteSpace(m), "a name");
        }

        if (Mode == AdaPrunerMode.Width)
        {
            CheckList(GroupReductions, nameof(GroupReductions), r => Enum.IsDefined(r), "sum, mean, max or product");
            CheckList(Allocations, nameof(Allocations), a => Enum.IsDefined(a), "uniform or adaptive");
        }
        else
        {
            CheckList(Perturbers, nameof(Perturbers), p => AdaPrunerConstants.DefaultPerturbers.Contains(p), string.Join(" or ", AdaPrunerConstants.DefaultPerturbers));
            CheckList(Norms, nameof(Norms), n => n is not null && Pip.Norms.TryGet(n, out _), string.Join(", ", Pip.Norms.Names));
        }

        void CheckList<T>(IList<T>? values, string name, Func<T, bool> valid, string expected)
        {
            if (values is null)
            {
                return;
            }

            if (values.Count == 0)
            {
                errors.Add($"{path}.{name}: give at least one value.");
            }

            foreach (T value in values.Where(v => !valid(v)).Distinct())
            {
                errors.Add($"{path}.{name}: '{value}' is not valid; expected {expected}.");
            }

            foreach (T value in values.GroupBy(v => v).Where(g => g.Count() > 1).Select(g => g.Key))
            {
                errors.Add($"{path}.{name}: '{value}' is listed twice.");
            }
        }
    }

    internal AdaPrunerSpaceOptions Clone() => new()
    {
        Mode = Mode,
        Corpora = [.. Corpora],
        SampleCounts = [.. SampleCounts],
        SequenceLengths = [.. SequenceLengths],
        CalibrationSeeds = [.. CalibrationSeeds],
        Metrics = Metrics is null ? null : [.. Metrics],
        GroupReductions = [.. GroupReductions],
        Allocations = [.. Allocations],
        Perturbers = [.. Perturbers],
        Norms = [.. Norms],
    };
}

/// <summary>
/// One point of an AdaPruner solution space: the calibration data (corpus, samples, sequence length, draw) and the
/// metric with its settings. Settings a metric does not use are still recorded; <see cref="Key"/> leaves them out, so
/// configurations that prune identically share a key (and a cache entry).
/// </summary>
public sealed record AdaPrunerConfiguration
{
    /// <summary>What is pruned.</summary>
    public required AdaPrunerMode Mode { get; init; }

    /// <summary>The corpus's name.</summary>
    public required string Corpus { get; init; }

    /// <summary>The corpus's text file.</summary>
    public required string CorpusPath { get; init; }

    /// <summary>Number of calibration samples.</summary>
    public required int SampleCount { get; init; }

    /// <summary>Length of each calibration sample, in tokens.</summary>
    public required int SequenceLength { get; init; }

    /// <summary>Seed of the draw of the samples. Default <see cref="CalibrationConstants.DefaultSeed"/>.</summary>
    public int CalibrationSeed { get; init; } = CalibrationConstants.DefaultSeed;

    /// <summary>The importance metric's name.</summary>
    public required string Metric { get; init; }

    /// <summary>Width: the group reduction; null in depth mode.</summary>
    public WidthGroupReduction? GroupReduction { get; init; }

    /// <summary>Width: the allocation; null in depth mode.</summary>
    public WidthAllocation? Allocation { get; init; }

    /// <summary>Depth: the perturber's name; null in width mode.</summary>
    public string? Perturber { get; init; }

    /// <summary>Depth: the norm's name; null in width mode.</summary>
    public string? Norm { get; init; }

    /// <summary>Whether the metric reads the calibration samples (false for <see cref="AdaPrunerConstants.DataFreeMetrics"/>).</summary>
    [JsonIgnore]
    public bool UsesCalibrationData => !AdaPrunerConstants.DataFreeMetrics.Contains(Metric);

    /// <summary>Whether the metric uses <see cref="GroupReduction"/>.</summary>
    [JsonIgnore]
    public bool UsesGroupReduction => Mode == AdaPrunerMode.Width && !AdaPrunerConstants.ReductionFreeWidthMetrics.Contains(Metric);

    /// <summary>Whether the metric uses <see cref="Perturber"/>.</summary>
    [JsonIgnore]
    public bool UsesPerturber => Mode == AdaPrunerMode.Depth && AdaPrunerConstants.PerturbationDepthMetrics.Contains(Metric);

    /// <summary>Whether the metric uses <see cref="Norm"/>.</summary>
    [JsonIgnore]
    public bool UsesNorm => Mode == AdaPrunerMode.Depth && AdaPrunerConstants.NormDepthMetrics.Contains(Metric);

    /// <summary>
    /// The canonical text of the configuration, e.g. <c>width metric=taylor corpus=brown samples=16 seq_len=128
    /// calibration_seed=42 aggregation=sum allocation=uniform</c>: only the settings that change the pruning (no
    /// calibration data for a data-free metric, no reduction for FLAP, no perturber or norm where unused). Two
    /// configurations with the same key prune the same model identically.
    /// </summary>
    [JsonIgnore]
    public string Key
    {
        get
        {
            var key = new StringBuilder(Mode == AdaPrunerMode.Width ? "width" : "depth");
            Add(AdaPrunerConstants.MetricParameter, Metric);
            if (UsesCalibrationData)
            {
                Add(AdaPrunerConstants.CorpusParameter, Corpus);
                Add(AdaPrunerConstants.SamplesParameter, SampleCount.ToString(CultureInfo.InvariantCulture));
                Add(AdaPrunerConstants.SequenceLengthParameter, SequenceLength.ToString(CultureInfo.InvariantCulture));
                Add(AdaPrunerConstants.CalibrationSeedParameter, CalibrationSeed.ToString(CultureInfo.InvariantCulture));
            }
            else if (Metric == WidthConstants.RandomMetric)
            {
                // The random metric draws from the run's seed, which is the calibration seed.
                Add(AdaPrunerConstants.CalibrationSeedParameter, CalibrationSeed.ToString(CultureInfo.InvariantCulture));
            }

            if (UsesGroupReduction && GroupReduction is { } reduction)
            {
                Add(AdaPrunerConstants.GroupReductionParameter, AdaPrunerConstants.Name(reduction));
            }

            if (Mode == AdaPrunerMode.Width && Allocation is { } allocation)
            {
                Add(AdaPrunerConstants.AllocationParameter, AdaPrunerConstants.Name(allocation));
            }

            if (UsesPerturber && Perturber is { } perturber)
            {
                Add(AdaPrunerConstants.PerturberParameter, perturber);
            }

            if (UsesNorm && Norm is { } norm)
            {
                Add(AdaPrunerConstants.NormParameter, norm);
            }

            return key.ToString();

            void Add(string name, string value) => key.Append(' ').Append(name).Append('=').Append(value);
        }
    }

    /// <summary>The <see cref="Key"/>.</summary>
    public override string ToString() => Key;
}

/// <summary>
/// An AdaPruner solution space: the <see cref="SearchSpace"/> the searchers explore (all parameters categorical, in
/// the order corpus, samples, seq_len, calibration_seed, metric, then aggregation and allocation (width) or perturber
/// and norm (depth)), and the mapping between its assignments and <see cref="AdaPrunerConfiguration"/>s.
/// </summary>
/// <remarks>Immutable and thread-safe.</remarks>
public sealed class AdaPrunerSpace
{
    private readonly AdaPrunerSpaceOptions _options;
    private readonly Dictionary<string, AdaPrunerCorpus> _corpora;

    /// <summary>A space of the given choices.</summary>
    /// <param name="options">The choices; validated and copied.</param>
    /// <exception cref="Microsoft.Extensions.Options.OptionsValidationException">The options are invalid (every problem is listed).</exception>
    public AdaPrunerSpace(AdaPrunerSpaceOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var errors = new List<string>();
        OptionsValidation.AddAllErrors(options, nameof(AdaPrunerSpaceOptions), errors);
        OptionsValidation.ThrowIfAny(errors, typeof(AdaPrunerSpaceOptions), nameof(AdaPrunerSpaceOptions));
        _options = options.Clone();
        _options.Metrics ??= [.. _options.Mode == AdaPrunerMode.Width ? AdaPrunerConstants.DefaultWidthMetrics : AdaPrunerConstants.DefaultDepthMetrics];
        _corpora = _options.Corpora.ToDictionary(c => c.Name, StringComparer.Ordinal);

        var parameters = new List<SearchParameter>
        {
            SearchParameter.Categorical(AdaPrunerConstants.CorpusParameter, _options.Corpora.Select(c => new ParameterValue(c.Name))),
            SearchParameter.Categorical(AdaPrunerConstants.SamplesParameter, _options.SampleCounts.Select(v => new ParameterValue(v))),
            SearchParameter.Categorical(AdaPrunerConstants.SequenceLengthParameter, _options.SequenceLengths.Select(v => new ParameterValue(v))),
            SearchParameter.Categorical(AdaPrunerConstants.CalibrationSeedParameter, _options.CalibrationSeeds.Select(v => new ParameterValue(v))),
            SearchParameter.Categorical(AdaPrunerConstants.MetricParameter, _options.Metrics.Select(v => new ParameterValue(v))),
        };
        if (Mode == AdaPrunerMode.Width)
        {
            parameters.Add(SearchParameter.Categorical(AdaPrunerConstants.GroupReductionParameter, _options.GroupReductions.Select(r => new ParameterValue(AdaPrunerConstants.Name(r)))));
            parameters.Add(SearchParameter.Categorical(AdaPrunerConstants.AllocationParameter, _options.Allocations.Select(a => new ParameterValue(AdaPrunerConstants.Name(a)))));
        }
        else
        {
            parameters.Add(SearchParameter.Categorical(AdaPrunerConstants.PerturberParameter, _options.Perturbers.Select(p => new ParameterValue(p))));
            parameters.Add(SearchParameter.Categorical(AdaPrunerConstants.NormParameter, _options.Norms.Select(n => new ParameterValue(n))));
        }

        Space = new SearchSpace(parameters);
    }

    /// <summary>What is pruned.</summary>
    public AdaPrunerMode Mode => _options.Mode;

    /// <summary>The search space of the searchers.</summary>
    public SearchSpace Space { get; }

    /// <summary>The corpora, in order.</summary>
    public IReadOnlyList<AdaPrunerCorpus> Corpora => [.. _options.Corpora];

    /// <summary>The metrics, in order.</summary>
    public IReadOnlyList<string> Metrics => [.. _options.Metrics!];

    /// <summary>Number of points of the grid (every combination of choices, equivalent ones counted separately).</summary>
    public long GridSize => Space.Parameters.Aggregate(1L, (n, p) => n * ((CategoricalParameter)p).Choices.Count);

    /// <summary>The configuration an assignment stands for.</summary>
    /// <param name="assignment">An assignment of <see cref="Space"/>.</param>
    /// <exception cref="ArgumentException">The assignment does not fit the space (the message names the parameter).</exception>
    public AdaPrunerConfiguration Decode(ParameterAssignment assignment)
    {
        Space.Validate(assignment);
        string corpus = assignment.GetString(AdaPrunerConstants.CorpusParameter);
        var configuration = new AdaPrunerConfiguration
        {
            Mode = Mode,
            Corpus = corpus,
            CorpusPath = _corpora[corpus].Path,
            SampleCount = assignment.GetInt32(AdaPrunerConstants.SamplesParameter),
            SequenceLength = assignment.GetInt32(AdaPrunerConstants.SequenceLengthParameter),
            CalibrationSeed = assignment.GetInt32(AdaPrunerConstants.CalibrationSeedParameter),
            Metric = assignment.GetString(AdaPrunerConstants.MetricParameter),
        };
        if (Mode == AdaPrunerMode.Width)
        {
            GroupReduction.TryParse(assignment.GetString(AdaPrunerConstants.GroupReductionParameter), out WidthGroupReduction reduction);
            return configuration with
            {
                GroupReduction = reduction,
                Allocation = Enum.Parse<WidthAllocation>(assignment.GetString(AdaPrunerConstants.AllocationParameter), ignoreCase: true),
            };
        }

        return configuration with
        {
            Perturber = assignment.GetString(AdaPrunerConstants.PerturberParameter),
            Norm = assignment.GetString(AdaPrunerConstants.NormParameter),
        };
    }

    /// <summary>The assignment of a configuration of this space.</summary>
    /// <param name="configuration">The configuration; its mode and every setting must be among the space's choices.</param>
    /// <exception cref="ArgumentException">The configuration is not in the space (the message names the parameter).</exception>
    public ParameterAssignment Encode(AdaPrunerConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        if (configuration.Mode != Mode)
        {
            throw new ArgumentException($"The configuration is for {configuration.Mode} pruning; the space is for {Mode} pruning.", nameof(configuration));
        }

        var items = new List<KeyValuePair<string, ParameterValue>>
        {
            new(AdaPrunerConstants.CorpusParameter, configuration.Corpus),
            new(AdaPrunerConstants.SamplesParameter, configuration.SampleCount),
            new(AdaPrunerConstants.SequenceLengthParameter, configuration.SequenceLength),
            new(AdaPrunerConstants.CalibrationSeedParameter, configuration.CalibrationSeed),
            new(AdaPrunerConstants.MetricParameter, configuration.Metric),
        };
        if (Mode == AdaPrunerMode.Width)
        {
            items.Add(new(AdaPrunerConstants.GroupReductionParameter, AdaPrunerConstants.Name(configuration.GroupReduction ?? WidthGroupReduction.Sum)));
            items.Add(new(AdaPrunerConstants.AllocationParameter, AdaPrunerConstants.Name(configuration.Allocation ?? WidthAllocation.Uniform)));
        }
        else
        {
            items.Add(new(AdaPrunerConstants.PerturberParameter, configuration.Perturber ?? PerturbationConstants.LexiconPerturberName));
            items.Add(new(AdaPrunerConstants.NormParameter, configuration.Norm ?? PipelineConstants.DefaultNorm));
        }

        var assignment = new ParameterAssignment(items);
        Space.Validate(assignment);
        return assignment;
    }

    /// <summary>Every assignment of the grid, in lexicographic order of the choices (the last parameter varies fastest).</summary>
    public IEnumerable<ParameterAssignment> Grid()
    {
        var parameters = Space.Parameters.Cast<CategoricalParameter>().ToArray();
        var index = new int[parameters.Length];
        while (true)
        {
            yield return new ParameterAssignment(parameters.Select((p, i) => new KeyValuePair<string, ParameterValue>(p.Name, p.Choices[index[i]])));
            int k = parameters.Length - 1;
            while (k >= 0 && ++index[k] == parameters[k].Choices.Count)
            {
                index[k--] = 0;
            }

            if (k < 0)
            {
                yield break;
            }
        }
    }

    /// <summary>The configurations of the grid with distinct <see cref="AdaPrunerConfiguration.Key"/>s (the first of each), in grid order.</summary>
    public IReadOnlyList<AdaPrunerConfiguration> DistinctConfigurations()
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        return [.. Grid().Select(Decode).Where(c => seen.Add(c.Key))];
    }

    /// <summary>One line per parameter.</summary>
    public override string ToString() => Space.ToString();
}
