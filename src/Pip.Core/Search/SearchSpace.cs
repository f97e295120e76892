using System.Text.Json.Serialization;

namespace Pip.Search;

/// <summary>
/// The named parameters a search explores, in order (no conditional parameters: every assignment sets all of them).
/// Serialised to JSON as <c>{"parameters": [...]}</c>.
/// </summary>
public sealed class SearchSpace
{
    private readonly SearchParameter[] _parameters;
    private readonly Dictionary<string, SearchParameter> _byName;

    /// <summary>A search space of the given parameters.</summary>
    /// <exception cref="ArgumentException">There is no parameter, a parameter is null, or two share a name.</exception>
    [JsonConstructor]
    public SearchSpace(IReadOnlyList<SearchParameter> parameters)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        _parameters = parameters.ToArray();
        if (_parameters.Length == 0)
        {
            throw new ArgumentException("A search space needs at least one parameter.", nameof(parameters));
        }

        _byName = new Dictionary<string, SearchParameter>(StringComparer.Ordinal);
        foreach (SearchParameter? parameter in _parameters)
        {
            if (parameter is null)
            {
                throw new ArgumentException("A search space has a null parameter.", nameof(parameters));
            }

            if (!_byName.TryAdd(parameter.Name, parameter))
            {
                throw new ArgumentException($"A search space names parameter '{parameter.Name}' twice.", nameof(parameters));
            }
        }
    }

    /// <summary>A search space of the given parameters.</summary>
    /// <exception cref="ArgumentException">There is no parameter, a parameter is null, or two share a name.</exception>
    public SearchSpace(params IEnumerable<SearchParameter> parameters)
        : this((IReadOnlyList<SearchParameter>)(parameters ?? throw new ArgumentNullException(nameof(parameters))).ToArray())
    {
    }

    /// <summary>The parameters, in order.</summary>
    public IReadOnlyList<SearchParameter> Parameters => _parameters;

    /// <summary>Number of parameters.</summary>
    [JsonIgnore]
    public int Count => _parameters.Length;

    /// <summary>The parameter named <paramref name="name"/>.</summary>
    /// <exception cref="KeyNotFoundException">No such parameter.</exception>
    public SearchParameter this[string name] =>
        _byName.TryGetValue(name, out SearchParameter? parameter)
            ? parameter
            : throw new KeyNotFoundException($"The search space has no parameter '{name}' (it has: {string.Join(", ", _byName.Keys)}).");

    /// <summary>Whether the search space has a parameter named <paramref name="name"/>.</summary>
    public bool Contains(string name) => _byName.ContainsKey(name);

    /// <summary>Whether <paramref name="assignment"/> sets exactly this space's parameters, each to a possible value.</summary>
    public bool Contains(ParameterAssignment assignment) => Problem(assignment) is null;

    /// <summary>Throws unless <paramref name="assignment"/> sets exactly this space's parameters, each to a possible value.</summary>
    /// <exception cref="ArgumentException">The first problem found, naming the parameter.</exception>
    public void Validate(ParameterAssignment assignment)
    {
        if (Problem(assignment) is { } problem)
        {
            throw new ArgumentException(problem, nameof(assignment));
        }
    }

    /// <summary>One line per parameter.</summary>
    public override string ToString() => string.Join(Environment.NewLine, _parameters.Select(p => p.ToString()));

    /// <summary>An assignment from internal values, one per parameter in order.</summary>
    internal ParameterAssignment FromInternal(ReadOnlySpan<double> values)
    {
        var items = new KeyValuePair<string, ParameterValue>[_parameters.Length];
        for (int i = 0; i < items.Length; i++)
        {
            items[i] = new(_parameters[i].Name, _parameters[i].FromInternal(values[i]));
        }

        return new ParameterAssignment(items);
    }

    private string? Problem(ParameterAssignment assignment)
    {
        ArgumentNullException.ThrowIfNull(assignment);
        foreach (SearchParameter parameter in _parameters)
        {
            if (!assignment.TryGetValue(parameter.Name, out ParameterValue value))
            {
                return $"The assignment ({assignment}) does not set parameter '{parameter.Name}'.";
            }

            if (!parameter.Contains(value))
            {
                return $"The assignment sets parameter '{parameter.Name}' to {value}, outside {parameter}.";
            }
        }

        if (assignment.Count != _parameters.Length)
        {
            string extra = string.Join(", ", assignment.Keys.Where(k => !_byName.ContainsKey(k)));
            return $"The assignment sets parameters the search space does not have: {extra}.";
        }

        return null;
    }
}
