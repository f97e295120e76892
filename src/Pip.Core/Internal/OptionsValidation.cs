using System.Collections;
using System.ComponentModel.DataAnnotations;
using System.Reflection;
using Microsoft.Extensions.Options;

namespace Pip.Internal;

/// <summary>Options with checks that DataAnnotations attributes cannot express (cross-field rules, names).</summary>
internal interface IPipOptionsCheck
{
    /// <summary>Adds one message per problem to <paramref name="errors"/>; <paramref name="path"/> prefixes member names.</summary>
    void AddErrors(List<string> errors, string path);
}

/// <summary>Validates options objects: DataAnnotations attributes (recursing into <see cref="ValidateObjectMembersAttribute"/> members) plus <see cref="IPipOptionsCheck"/>.</summary>
internal static class OptionsValidation
{
    /// <summary>Adds every DataAnnotations error of <paramref name="options"/> and of its nested options to <paramref name="errors"/>.</summary>
    public static void AddAnnotationErrors(object options, string path, List<string> errors)
    {
        var results = new List<ValidationResult>();
        Validator.TryValidateObject(options, new ValidationContext(options), results, validateAllProperties: true);
        foreach (ValidationResult result in results)
        {
            string members = string.Join(", ", result.MemberNames.Select(m => $"{path}.{m}"));
            errors.Add(members.Length == 0 ? $"{path}: {result.ErrorMessage}" : $"{members}: {result.ErrorMessage}");
        }

        foreach (PropertyInfo property in NestedOptionProperties(options.GetType()))
        {
            if (property.GetValue(options) is { } nested)
            {
                AddAnnotationErrors(nested, $"{path}.{property.Name}", errors);
            }
        }
    }

    /// <summary>Adds the <see cref="IPipOptionsCheck"/> errors of <paramref name="options"/> and of its nested options.</summary>
    public static void AddCheckErrors(object options, string path, List<string> errors)
    {
        if (options is IPipOptionsCheck check)
        {
            check.AddErrors(errors, path);
        }

        foreach (PropertyInfo property in NestedOptionProperties(options.GetType()))
        {
            if (property.GetValue(options) is { } nested)
            {
                AddCheckErrors(nested, $"{path}.{property.Name}", errors);
            }
        }
    }

    /// <summary>Both kinds of errors.</summary>
    public static void AddAllErrors(object options, string path, List<string> errors)
    {
        AddAnnotationErrors(options, path, errors);
        AddCheckErrors(options, path, errors);
    }

    /// <summary>Throws one <see cref="OptionsValidationException"/> listing every error, if there is any.</summary>
    public static void ThrowIfAny(List<string> errors, Type optionsType, string optionsName)
    {
        if (errors.Count > 0)
        {
            throw new OptionsValidationException(optionsName, optionsType, errors);
        }
    }

    /// <summary>
    /// Checks the DataAnnotations attributes and the <see cref="IValidatableObject"/> rules of <paramref name="options"/>;
    /// throws one <see cref="ValidationException"/> that lists every problem (<c>Invalid {what} (N problem(s)): ...</c>).
    /// </summary>
    public static void ThrowIfInvalid(IValidatableObject options, string what)
    {
        var results = new List<ValidationResult>();
        Validator.TryValidateObject(options, new ValidationContext(options), results, validateAllProperties: true);
        // TryValidateObject skips IValidatableObject when attribute errors exist; run it anyway to list everything.
        if (results.Count > 0) results.AddRange(options.Validate(new ValidationContext(options)));
        var messages = results.Select(r => r.ErrorMessage ?? "").Distinct().ToList();
        if (messages.Count == 0) return;
        throw new ValidationException($"Invalid {what} ({messages.Count} problem(s)):{Environment.NewLine}{string.Join(Environment.NewLine, messages.Select(m => "  - " + m))}");
    }

    private static IEnumerable<PropertyInfo> NestedOptionProperties(Type type) =>
        type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.GetIndexParameters().Length == 0 && p.IsDefined(typeof(ValidateObjectMembersAttribute), inherit: true));
}

/// <summary>Flattens options objects to <c>prefix.Property</c> → invariant-culture strings for reports.</summary>
internal static class OptionsFlattener
{
    public static void Flatten(object? options, string prefix, IDictionary<string, string> into)
    {
        if (options is null)
        {
            return;
        }

        foreach (PropertyInfo property in options.GetType().GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (property.GetIndexParameters().Length != 0 || property.GetMethod is null)
            {
                continue;
            }

            object? value = property.GetValue(options);
            string key = $"{prefix}.{property.Name}";
            if (value is null)
            {
                continue;
            }

            if (Format(value) is { } text)
            {
                into[key] = text;
            }
            else if (property.IsDefined(typeof(ValidateObjectMembersAttribute), inherit: true))
            {
                Flatten(value, key, into);
            }
            else
            {
                into[key] = value.ToString() ?? string.Empty;
            }
        }
    }

    private static string? Format(object value) => value switch
    {
        string s => s,
        bool b => b ? "true" : "false",
        Enum e => e.ToString(),
        IFormattable f when value.GetType().IsPrimitive || value is decimal => f.ToString(null, System.Globalization.CultureInfo.InvariantCulture),
        PruningTarget t => t.ToString(),
        IEnumerable items and not string => string.Join(",", items.Cast<object?>().Select(i => i is null ? string.Empty : Format(i) ?? i.ToString())),
        _ => null,
    };
}
