using System.Collections;
using System.Diagnostics.CodeAnalysis;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Pip.Search;

/// <summary>
/// Values of named search parameters, in insertion order (a searcher uses the order of its search space). Equality
/// compares names and values, not order. Serialised to JSON as an object <c>{"name": value, …}</c>.
/// </summary>
[JsonConverter(typeof(ParameterAssignmentJsonConverter))]
public sealed class ParameterAssignment : IReadOnlyDictionary<string, ParameterValue>, IEquatable<ParameterAssignment>
{
    private readonly KeyValuePair<string, ParameterValue>[] _items;
    private readonly Dictionary<string, ParameterValue> _byName;

    /// <summary>An assignment of the given values.</summary>
    /// <exception cref="ArgumentException">A name is empty or appears twice.</exception>
    public ParameterAssignment(IEnumerable<KeyValuePair<string, ParameterValue>> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        _items = values.ToArray();
        _byName = new Dictionary<string, ParameterValue>(_items.Length, StringComparer.Ordinal);
        foreach ((string name, ParameterValue value) in _items)
        {
            if (string.IsNullOrEmpty(name))
            {
                throw new ArgumentException("A parameter assignment has an empty parameter name.", nameof(values));
            }

            if (!_byName.TryAdd(name, value))
            {
                throw new ArgumentException($"A parameter assignment names parameter '{name}' twice.", nameof(values));
            }
        }
    }

    /// <summary>The value of parameter <paramref name="name"/>.</summary>
    /// <exception cref="KeyNotFoundException">The assignment has no such parameter.</exception>
    public ParameterValue this[string name] =>
        _byName.TryGetValue(name, out ParameterValue value)
            ? value
            : throw new KeyNotFoundException($"The parameter assignment has no parameter '{name}' (it has: {string.Join(", ", Keys)}).");

    /// <summary>Number of parameters.</summary>
    public int Count => _items.Length;

    /// <summary>Parameter names in order.</summary>
    public IEnumerable<string> Keys => _items.Select(item => item.Key);

    /// <summary>Values in order.</summary>
    public IEnumerable<ParameterValue> Values => _items.Select(item => item.Value);

    /// <summary>The string value of parameter <paramref name="name"/>.</summary>
    /// <exception cref="KeyNotFoundException">No such parameter.</exception>
    /// <exception cref="InvalidOperationException">The value is a number.</exception>
    public string GetString(string name) => this[name].AsString();

    /// <summary>The number value of parameter <paramref name="name"/>.</summary>
    /// <exception cref="KeyNotFoundException">No such parameter.</exception>
    /// <exception cref="InvalidOperationException">The value is a string.</exception>
    public double GetDouble(string name) => this[name].AsDouble();

    /// <summary>The integer value of parameter <paramref name="name"/>.</summary>
    /// <exception cref="KeyNotFoundException">No such parameter.</exception>
    /// <exception cref="InvalidOperationException">The value is a string or not a 32-bit integer.</exception>
    public int GetInt32(string name) => this[name].AsInt32();

    /// <inheritdoc/>
    public bool ContainsKey(string key) => _byName.ContainsKey(key);

    /// <inheritdoc/>
    public bool TryGetValue(string key, [MaybeNullWhen(false)] out ParameterValue value) => _byName.TryGetValue(key, out value);

    /// <inheritdoc/>
    public IEnumerator<KeyValuePair<string, ParameterValue>> GetEnumerator() => ((IEnumerable<KeyValuePair<string, ParameterValue>>)_items).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <inheritdoc/>
    public bool Equals(ParameterAssignment? other)
    {
        if (other is null || other.Count != Count)
        {
            return false;
        }

        foreach ((string name, ParameterValue value) in _items)
        {
            if (!other._byName.TryGetValue(name, out ParameterValue otherValue) || otherValue != value)
            {
                return false;
            }
        }

        return true;
    }

    /// <inheritdoc/>
    public override bool Equals(object? obj) => Equals(obj as ParameterAssignment);

    /// <inheritdoc/>
    public override int GetHashCode()
    {
        int hash = 0;
        foreach ((string name, ParameterValue value) in _items)
        {
            hash ^= HashCode.Combine(StringComparer.Ordinal.GetHashCode(name), value);
        }

        return hash;
    }

    /// <summary><c>name=value</c> pairs separated by commas.</summary>
    public override string ToString() => string.Join(", ", _items.Select(item => $"{item.Key}={item.Value}"));
}

/// <summary>Reads and writes a <see cref="ParameterAssignment"/> as a JSON object.</summary>
internal sealed class ParameterAssignmentJsonConverter : JsonConverter<ParameterAssignment>
{
    public override ParameterAssignment Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            throw new JsonException($"A parameter assignment must be a JSON object, not {reader.TokenType}.");
        }

        var converter = new ParameterValueJsonConverter();
        var items = new List<KeyValuePair<string, ParameterValue>>();
        while (reader.Read() && reader.TokenType != JsonTokenType.EndObject)
        {
            string name = reader.GetString()!;
            reader.Read();
            items.Add(new(name, converter.Read(ref reader, typeof(ParameterValue), options)));
        }

        try
        {
            return new ParameterAssignment(items);
        }
        catch (ArgumentException e)
        {
            throw new JsonException(e.Message, e);
        }
    }

    public override void Write(Utf8JsonWriter writer, ParameterAssignment value, JsonSerializerOptions options)
    {
        var converter = new ParameterValueJsonConverter();
        writer.WriteStartObject();
        foreach ((string name, ParameterValue item) in value)
        {
            writer.WritePropertyName(name);
            converter.Write(writer, item, options);
        }

        writer.WriteEndObject();
    }
}
