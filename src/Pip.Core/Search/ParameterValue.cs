using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Pip.Search;

/// <summary>
/// The value of one search parameter: a string (a categorical choice such as a calibration set's name) or a finite
/// number (a categorical choice, an integer or a float). Serialised to JSON as a JSON string or number.
/// </summary>
[JsonConverter(typeof(ParameterValueJsonConverter))]
public readonly struct ParameterValue : IEquatable<ParameterValue>
{
    private readonly string? _text;
    private readonly double _number;

    /// <summary>A string value.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="text"/> is null.</exception>
    public ParameterValue(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        _text = text;
        _number = 0;
    }

    /// <summary>A number value.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="number"/> is NaN or infinite.</exception>
    public ParameterValue(double number)
    {
        if (!double.IsFinite(number))
        {
            throw new ArgumentOutOfRangeException(nameof(number), number, "A parameter value must be a finite number.");
        }

        _text = null;
        _number = number;
    }

    /// <summary>Whether the value is a string.</summary>
    public bool IsString => _text is not null;

    /// <summary>Whether the value is a number (the default value is the number 0).</summary>
    public bool IsNumber => _text is null;

    /// <summary>The string.</summary>
    /// <exception cref="InvalidOperationException">The value is a number.</exception>
    public string AsString() => _text ?? throw new InvalidOperationException($"The parameter value {this} is a number, not a string.");

    /// <summary>The number.</summary>
    /// <exception cref="InvalidOperationException">The value is a string.</exception>
    public double AsDouble() => _text is null ? _number : throw new InvalidOperationException($"The parameter value \"{_text}\" is a string, not a number.");

    /// <summary>The number as a 64-bit integer.</summary>
    /// <exception cref="InvalidOperationException">The value is a string, not integral or out of range.</exception>
    public long AsInt64()
    {
        double number = AsDouble();
        if (number != Math.Floor(number) || number < long.MinValue || number >= 9.2233720368547758E+18)
        {
            throw new InvalidOperationException($"The parameter value {this} is not a 64-bit integer.");
        }

        return (long)number;
    }

    /// <summary>The number as a 32-bit integer.</summary>
    /// <exception cref="InvalidOperationException">The value is a string, not integral or out of range.</exception>
    public int AsInt32()
    {
        double number = AsDouble();
        if (number != Math.Floor(number) || number < int.MinValue || number > int.MaxValue)
        {
            throw new InvalidOperationException($"The parameter value {this} is not a 32-bit integer.");
        }

        return (int)number;
    }

    /// <summary>A string value.</summary>
    public static implicit operator ParameterValue(string text) => new(text);

    /// <summary>A number value.</summary>
    public static implicit operator ParameterValue(double number) => new(number);

    /// <summary>A number value.</summary>
    public static implicit operator ParameterValue(int number) => new(number);

    /// <summary>A string value (named alternative to the implicit conversion).</summary>
    public static ParameterValue FromString(string text) => new(text);

    /// <summary>A number value (named alternative to the implicit conversion).</summary>
    public static ParameterValue FromDouble(double number) => new(number);

    /// <summary>A number value (named alternative to the implicit conversion).</summary>
    public static ParameterValue FromInt32(int number) => new(number);

    /// <inheritdoc/>
    public bool Equals(ParameterValue other) =>
        _text is null ? other._text is null && _number == other._number : string.Equals(_text, other._text, StringComparison.Ordinal);

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is ParameterValue other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode() => _text is null ? (_number == 0 ? 0 : _number.GetHashCode()) : StringComparer.Ordinal.GetHashCode(_text);

    /// <summary>The string, or the number in invariant culture (shortest round-trip form).</summary>
    public override string ToString() => _text ?? _number.ToString(CultureInfo.InvariantCulture);

    /// <summary>Whether both are the same string or the same number.</summary>
    public static bool operator ==(ParameterValue left, ParameterValue right) => left.Equals(right);

    /// <summary>Whether they differ.</summary>
    public static bool operator !=(ParameterValue left, ParameterValue right) => !left.Equals(right);
}

/// <summary>Reads and writes a <see cref="ParameterValue"/> as a JSON string or number.</summary>
internal sealed class ParameterValueJsonConverter : JsonConverter<ParameterValue>
{
    public override ParameterValue Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => reader.TokenType switch
    {
        JsonTokenType.String => new ParameterValue(reader.GetString()!),
        JsonTokenType.Number when reader.TryGetDouble(out double number) && double.IsFinite(number) => new ParameterValue(number),
        JsonTokenType.Number => throw new JsonException("A parameter value must be a finite number."),
        _ => throw new JsonException($"A parameter value must be a JSON string or number, not {reader.TokenType}."),
    };

    public override void Write(Utf8JsonWriter writer, ParameterValue value, JsonSerializerOptions options)
    {
        if (value.IsString)
        {
            writer.WriteStringValue(value.AsString());
        }
        else
        {
            writer.WriteNumberValue(value.AsDouble());
        }
    }
}
