namespace Pip.Tests.Perturbation;

/// <summary>Independent checks of recorded edits (not using the library's own edit code).</summary>
internal static class EditAssertions
{
    /// <summary>Applies the edits back to front with Remove/Insert.</summary>
    public static string Apply(string original, IReadOnlyList<PerturbationEdit> edits)
    {
        string text = original;
        foreach (PerturbationEdit edit in edits.OrderByDescending(e => e.Offset))
        {
            text = text.Remove(edit.Offset, edit.Before.Length).Insert(edit.Offset, edit.After);
        }

        return text;
    }

    /// <summary>Whether <paramref name="after"/> is <paramref name="before"/> with exactly one edit of <paramref name="kind"/>, ignoring case.</summary>
    public static bool IsSingleEdit(string before, string after, PerturbationKind kind)
    {
        string a = before.ToLowerInvariant();
        string b = after.ToLowerInvariant();
        switch (kind)
        {
            case PerturbationKind.Swap:
            {
                if (a.Length != b.Length)
                {
                    return false;
                }

                int[] diff = [.. Enumerable.Range(0, a.Length).Where(i => a[i] != b[i])];
                return diff.Length == 2 && diff[1] == diff[0] + 1 && a[diff[0]] == b[diff[1]] && a[diff[1]] == b[diff[0]];
            }

            case PerturbationKind.Replace:
                return a.Length == b.Length && Enumerable.Range(0, a.Length).Count(i => a[i] != b[i]) == 1;
            case PerturbationKind.Insert:
                return b.Length == a.Length + 1 && Enumerable.Range(0, b.Length).Any(i => b.Remove(i, 1) == a);
            case PerturbationKind.Delete:
                return a.Length == b.Length + 1 && Enumerable.Range(0, a.Length).Any(i => a.Remove(i, 1) == b);
            default:
                return false;
        }
    }

    public static void ShouldBeConsistent(PerturbedSample twin)
    {
        string original = twin.Original.Text;
        Apply(original, twin.Edits).Should().Be(twin.Text);
        twin.Edits.Select(e => e.Offset).Should().BeInAscendingOrder().And.OnlyHaveUniqueItems();
        twin.Edits.Select(e => e.Before.ToLowerInvariant()).Should().OnlyHaveUniqueItems("no word is edited twice");
        foreach (PerturbationEdit edit in twin.Edits)
        {
            original.Substring(edit.Offset, edit.Before.Length).Should().Be(edit.Before);
            IsSingleEdit(edit.Before, edit.After, edit.Kind).Should().BeTrue($"'{edit.Before}' → '{edit.After}' should be one {edit.Kind}");
        }
    }
}
