namespace Pip.Tests.Perturbation;

public class LexiconTests
{
    [Fact]
    public void FromTexts_MinFrequency_KeepsOnlyFrequentWords()
    {
        Lexicon lexicon = Lexicon.FromTexts(["The cat and the dog.", "THE Cat ran; café"], minFrequency: 2);

        lexicon.Words.Should().BeEquivalentTo(["the", "cat"]);
        lexicon.Contains("CAT").Should().BeTrue();
        lexicon.Contains("dog").Should().BeFalse();
    }

    [Fact]
    public void FromWords_NonAsciiAndPunctuation_AreIgnored()
    {
        Lexicon lexicon = Lexicon.FromWords(["Alter", "café", "don't", "", "ok"]);

        lexicon.Words.Should().BeEquivalentTo(["alter", "ok"]);
    }

    [Fact]
    public void LoadWordList_File_ReadsFirstTokenOfEachLineAndSkipsComments()
    {
        using var folder = new TempFolder();
        string path = folder.File("words.txt", "# a comment\nalter 12\n\nGhost\n  nappy  \n");

        Lexicon lexicon = Lexicon.LoadWordList(path);

        lexicon.Words.Should().BeEquivalentTo(["alter", "ghost", "nappy"]);
        lexicon.Source.Should().Be(path);
    }

    [Fact]
    public void LoadWordList_MissingFile_ThrowsNamingIt()
    {
        Action act = () => Lexicon.LoadWordList("/nonexistent/pip/words.txt");

        act.Should().Throw<FileNotFoundException>().WithMessage("*/nonexistent/pip/words.txt*");
    }

    [Fact]
    public void LoadWordList_NoWords_ThrowsNamingFile()
    {
        using var folder = new TempFolder();
        string path = folder.File("empty.txt", "# nothing\n123\n");

        Action act = () => Lexicon.LoadWordList(path);

        act.Should().Throw<InvalidDataException>().WithMessage($"*{path}*");
    }

    [Fact]
    public void FromFile_Corpus_CountsWordsAcrossLines()
    {
        using var folder = new TempFolder();
        string path = folder.File("corpus.txt", "alter the host\nthe ghost\nhost\n");

        Lexicon.FromFile(path, minFrequency: 2).Words.Should().BeEquivalentTo(["the", "host"]);
        Lexicon.FromFile(path).Count.Should().Be(4);
    }

    [Fact]
    public void FromFile_NoWordOftenEnough_ThrowsNamingFile()
    {
        using var folder = new TempFolder();
        string path = folder.File("corpus.txt", "alter the host\n");

        Action act = () => Lexicon.FromFile(path, minFrequency: 5);

        act.Should().Throw<InvalidDataException>().WithMessage($"*{path}*");
    }
}
