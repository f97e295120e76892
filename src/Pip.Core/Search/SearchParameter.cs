using System.Globalization;
using System.Text.Json.Serialization;

namespace Pip.Search;

/// <summary>
/// One named dimension of a <see cref="SearchSpace"/>: a <see cref="CategoricalParameter"/>, an
/// <see cref="IntegerParameter"/> or a <see cref="FloatParameter"/>. Serialised to JSON with a <c>kind</c>
/// discriminator (<c>categorical</c>, <c>integer</c>, <c>float</c>).
/// </summary>
[JsonPolymorphic(TypeDiscriminatorPropertyName = "kind")]
[JsonDerivedType(typeof(CategoricalParameter), "categorical")]
[JsonDerivedType(typeof(IntegerParameter), "integer")]
[JsonDerivedType(typeof(FloatParameter), "float")]
public abstract class SearchParameter
{
    private protected SearchParameter(string name)
    {
        if (string.IsNullOrWhiteSpace(name))
        {
            throw new ArgumentException("A search parameter needs a non-empty name.", nameof(name));
        }

        Name = name;
    }

    /// <summary>The parameter's name, unique within its search space.</summary>
    public string Name { get; }

    /// <summary>Whether <paramref name="value"/> is a possible value of this parameter.</summary>
    public abstract bool Contains(ParameterValue value);

    /// <summary>A categorical parameter with the given choices.</summary>
    public static CategoricalParameter Categorical(string name, params IEnumerable<ParameterValue> choices) => new(name, choices.ToArray());

    /// <summary>An integer parameter in [<paramref name="low"/>, <paramref name="high"/>], optionally searched on a log scale.</summary>
    public static IntegerParameter Integer(string name, int low, int high, bool log = false) => new(name, low, high, log);

    /// <summary>A float parameter in [<paramref name="low"/>, <paramref name="high"/>], optionally searched on a log scale.</summary>
    public static FloatParameter Float(string name, double low, double high, bool log = false) => new(name, low, high, log);

    /// <summary>Whether the parameter has a single possible value.</summary>
    internal abstract bool IsSingle { get; }

    /// <summary>Internal representation used by the searchers: the choice index, or the number.</summary>
    internal abstract double ToInternal(ParameterValue value);

    /// <summary>Inverse of <see cref="ToInternal"/>.</summary>
    internal abstract ParameterValue FromInternal(double value);

    /// <summary>A uniform draw (uniform in log space for log-scaled parameters) in internal representation.</summary>
    internal abstract double SampleUniform(Random random);

    private protected static string Format(double value) => value.ToString(CultureInfo.InvariantCulture);
}

/// <summary>A parameter whose value is one of a list of choices (strings or numbers), without order between them.</summary>
public sealed class CategoricalParameter : SearchParameter
{
    private readonly ParameterValue[] _choices;

    /// <summary>A categorical parameter.</summary>
    /// <exception cref="ArgumentException">The name is empty, there is no choice, or a choice appears twice.</exception>
    [JsonConstructor]
    public CategoricalParameter(string name, IReadOnlyList<ParameterValue> choices)
        : base(name)
    {
        ArgumentNullException.ThrowIfNull(choices);
        if (choices.Count == 0)
        {
            throw new ArgumentException($"Categorical parameter '{name}' has no choices.", nameof(choices));
        }

        _choices = choices.ToArray();
        var seen = new HashSet<ParameterValue>();
        foreach (ParameterValue choice in _choices)
        {
            if (!seen.Add(choice))
            {
                throw new ArgumentException($"Categorical parameter '{name}' lists the choice '{choice}' twice.", nameof(choices));
            }
        }
    }

    /// <summary>The choices, in the given order.</summary>
    public IReadOnlyList<ParameterValue> Choices => _choices;

    /// <summary>Index of <paramref name="value"/> among <see cref="Choices"/>, or −1.</summary>
    public int IndexOf(ParameterValue value) => Array.IndexOf(_choices, value);

    /// <inheritdoc/>
    public override bool Contains(ParameterValue value) => IndexOf(value) >= 0;

    /// <summary>Name and choices.</summary>
    public override string ToString() => $"{Name} ∈ {{{string.Join(", ", _choices)}}}";

    internal override bool IsSingle => _choices.Length == 1;

    internal override double ToInternal(ParameterValue value) => IndexOf(value);

    internal override ParameterValue FromInternal(double value) => _choices[(int)value];

    internal override double SampleUniform(Random random) => random.Next(_choices.Length);
}

/// <summary>An integer parameter in an inclusive range, searched uniformly or on a log scale.</summary>
public sealed class IntegerParameter : SearchParameter
{
    /// <summary>An integer parameter.</summary>
    /// <exception cref="ArgumentException">The name is empty, <paramref name="low"/> exceeds <paramref name="high"/>, or the scale is logarithmic and <paramref name="low"/> is below 1.</exception>
    [JsonConstructor]
    public IntegerParameter(string name, int low, int high, bool log = false)
        : base(name)
    {
        if (low > high)
        {
            throw new ArgumentException($"Integer parameter '{name}' has low {low} above high {high}.", nameof(low));
        }

        if (log && low < 1)
        {
            throw new ArgumentException($"Integer parameter '{name}' is log-scaled, so low must be at least 1, but it is {low}.", nameof(low));
        }

        Low = low;
        High = high;
        Log = log;
    }

    /// <summary>Smallest value (inclusive).</summary>
    public int Low { get; }

    /// <summary>Largest value (inclusive).</summary>
    public int High { get; }

    /// <summary>Whether the search works on log(value).</summary>
    public bool Log { get; }

    /// <inheritdoc/>
    public override bool Contains(ParameterValue value) =>
        value.IsNumber && value.AsDouble() is var x && x == Math.Floor(x) && x >= Low && x <= High;

    /// <summary>Name and range.</summary>
    public override string ToString() => $"{Name} ∈ [{Low}, {High}] (integer{(Log ? ", log" : string.Empty)})";

    internal override bool IsSingle => Low == High;

    internal override double ToInternal(ParameterValue value) => value.AsDouble();

    internal override ParameterValue FromInternal(double value) => new(value);

    internal override double SampleUniform(Random random)
    {
        if (!Log)
        {
            return Low + (double)random.NextInt64((long)High - Low + 1);
        }

        // Uniform in log space over the cells [k − ½, k + ½], as a log-uniform draw then rounded.
        double a = Math.Log(Low - 0.5);
        double b = Math.Log(High + 0.5);
        return Math.Clamp(Math.Round(Math.Exp(a + (b - a) * random.NextDouble())), Low, High);
    }
}

/// <summary>A real parameter in a closed range, searched uniformly or on a log scale.</summary>
public sealed class FloatParameter : SearchParameter
{
    /// <summary>A float parameter.</summary>
    /// <exception cref="ArgumentException">The name is empty, a bound is not finite, <paramref name="low"/> is not below <paramref name="high"/>, or the scale is logarithmic and <paramref name="low"/> is not positive.</exception>
    [JsonConstructor]
    public FloatParameter(string name, double low, double high, bool log = false)
        : base(name)
    {
        if (!double.IsFinite(low) || !double.IsFinite(high))
        {
            throw new ArgumentException($"Float parameter '{name}' needs finite bounds, not [{Format(low)}, {Format(high)}].", nameof(low));
        }

        if (!(low < high) || !double.IsFinite(high - low))
        {
            throw new ArgumentException($"Float parameter '{name}' needs low below high (and a finite width), but has [{Format(low)}, {Format(high)}].", nameof(low));
        }

        if (log && !(low > 0))
        {
            throw new ArgumentException($"Float parameter '{name}' is log-scaled, so low must be positive, but it is {Format(low)}.", nameof(low));
        }

        Low = low;
        High = high;
        Log = log;
    }

    /// <summary>Smallest value (inclusive).</summary>
    public double Low { get; }

    /// <summary>Largest value (inclusive).</summary>
    public double High { get; }

    /// <summary>Whether the search works on log(value).</summary>
    public bool Log { get; }

    /// <inheritdoc/>
    public override bool Contains(ParameterValue value) => value.IsNumber && value.AsDouble() is var x && x >= Low && x <= High;

    /// <summary>Name and range.</summary>
    public override string ToString() => $"{Name} ∈ [{Format(Low)}, {Format(High)}]{(Log ? " (log)" : string.Empty)}";

    internal override bool IsSingle => false;

    internal override double ToInternal(ParameterValue value) => value.AsDouble();

    internal override ParameterValue FromInternal(double value) => new(Math.Clamp(value, Low, High));

    internal override double SampleUniform(Random random)
    {
        double u = random.NextDouble();
        double x = Log ? Math.Exp(Math.Log(Low) + (Math.Log(High) - Math.Log(Low)) * u) : Low + (High - Low) * u;
        return Math.Clamp(x, Low, High);
    }
}
